"""Logs: one JSON object per line on stdout, tagged with the request id, scrubbed of secrets."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
import time
from typing import Any
from urllib.parse import quote, quote_plus

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_secrets: tuple[str, ...] = ()  # longest first, so that a secret containing another is masked whole
_lock = threading.Lock()

# Belt and braces: whatever slips into a message, these shapes never leave the process.
_PATTERNS = (
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\"',}\n]+"),
    re.compile(r"(?i)(x-security-token[\"']?\s*[:=]\s*[\"']?)[^\"',}\n]+"),
    re.compile(r"()SDK-HMAC-SHA256\s+[^\"'\n]+"),  # the whole header value, its scheme too
    re.compile(r"(?i)(Signature=)[0-9a-f]+"),
)
REDACTED = "[redacted]"


MAX_FIELD_CHARS = 1000  # of any one text in a log line: an answer's error message can be megabytes
FULL_TEXT = "text"  # the one field logged whole: a notification a dry run would publish (our own, at most 256 KB)


def _forms(secret: str) -> set[str]:
    """The secret as an answer could echo it back: raw, URL-encoded, JSON-escaped (with or without escaped
    slashes), and each line of it wrapped at 64 or 76 columns."""
    escaped = json.dumps(secret)[1:-1]
    forms = {secret, quote(secret, safe=""), quote_plus(secret), escaped, escaped.replace("/", "\\/")}
    for width in (64, 76):
        forms.update(secret[i : i + width] for i in range(0, len(secret), width) if len(secret) > width)
    return {form for form in forms if len(form) >= 8 or form == secret}


def register_secret(value: str | None) -> None:
    """Remember a credential so that it is masked wherever it would be logged, in any form it could take."""
    global _secrets
    if value and len(value) >= 4 and value not in _secrets:
        with _lock:  # sorted once here, not on every line logged
            _secrets = tuple(sorted({*_secrets, *_forms(value)}, key=len, reverse=True))


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def bind_request_id(request_id: str | None) -> None:
    _request_id.set(request_id)


def _bounded(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
        return value[: MAX_FIELD_CHARS - 3] + "..."
    if isinstance(value, (list, tuple)):
        return [_bounded(v) for v in value[:20]]
    return value


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "request_id": _request_id.get(),
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update({key: value if key == FULL_TEXT else _bounded(value) for key, value in fields.items()})
        entry["message"] = _bounded(entry["message"])
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class _Stdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is at the time (the runtime's, or a test's capture)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class _Logger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """`log.info("message", key=value, ...)`: keyword arguments become fields of the JSON line."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        passthrough = {k: kwargs.pop(k) for k in ("exc_info", "stack_info", "stacklevel") if k in kwargs}
        return msg, {**passthrough, "extra": {"fields": kwargs}}


def get_logger() -> _Logger:
    logger = logging.getLogger("sysprep_guard")
    if not logger.handlers:
        stream = _Stdout()
        stream.setFormatter(_JsonFormatter())
        logger.addHandler(stream)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return _Logger(logger, {})


log = get_logger()
