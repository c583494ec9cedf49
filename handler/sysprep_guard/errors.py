"""The project's own errors: each message says what is wrong and what to fix."""

from __future__ import annotations

from .logs import redact
from .text import clip

MAX_MESSAGE_CHARS = 500  # of a message from an answer: an error_msg can be megabytes


class GuardError(Exception):
    """Base of every error the function raises on purpose."""

    kind = "error"


class ConfigError(GuardError):
    """A configuration value is missing or malformed."""

    kind = "config_error"


class CredentialsError(GuardError):
    """No usable credentials."""

    kind = "credentials_error"


class EventError(GuardError):
    """The invocation's event is not one the function understands."""

    kind = "event_error"


class ApiError(GuardError):
    """A Huawei Cloud API call failed; carries what an operator needs to look it up."""

    kind = "api_error"

    def __init__(
        self,
        call: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retryable: bool = False,
        out_of_time: bool = False,
    ) -> None:
        self.call = call
        self.status = status
        # An error body could echo a header back: whatever came from it is scrubbed.
        # Scrubbed before cut: a secret the cut went through would no longer be recognised.
        self.code = code = clip(redact(code), 64) if code else code
        self.message = message = clip(redact(message), MAX_MESSAGE_CHARS)
        self.request_id = request_id = clip(redact(request_id), 64) if request_id else request_id
        self.retryable = retryable  # throttled, 5xx, or no answer: another try may succeed
        self.out_of_time = out_of_time  # not attempted (or abandoned) for lack of time before the deadline
        parts = [f"{call} failed"]
        if status is not None:
            parts.append(f"HTTP {status}")
        if code:
            parts.append(code)
        text = ": ".join([", ".join(parts), message])
        if request_id:
            text += f" (request id {request_id})"
        super().__init__(text)

    @property
    def throttled(self) -> bool:
        return self.status == 429 or self.code == "APIG.0308"

    @property
    def refused(self) -> bool:
        """Credentials or permissions are wrong: no further call with them can succeed."""
        return self.status in (401, 403)

    @property
    def short(self) -> str:
        """The reason recorded beside a desktop that this error left unchecked."""
        head = self.code or (f"HTTP {self.status}" if self.status else "error")
        return f"{head}: {self.message}"


class DeliveryError(GuardError):
    """Findings could not be published; the invocation fails so the platform retries it."""

    kind = "delivery_error"
