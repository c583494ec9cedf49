"""The project's own errors: each message says what is wrong and what to fix."""

from __future__ import annotations


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
    ) -> None:
        self.call = call
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
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
    def short(self) -> str:
        """The reason recorded beside a desktop that this error left unchecked."""
        head = self.code or (f"HTTP {self.status}" if self.status else "error")
        return f"{head}: {self.message}"


class DeliveryError(GuardError):
    """Findings could not be published; the invocation fails so the platform retries it."""

    kind = "delivery_error"
