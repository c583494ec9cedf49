"""Configuration: read once per cold start from the function's user data, validated into one object."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from .endpoints import default_endpoint
from .errors import ConfigError
from .policy import Policy, Version, parse_version
from .text import clip

# Every key the code reads; template.yml declares the same set (a test checks both ways).
KEYS = (
    "REGION",
    "PROJECT_ID",
    "WORKSPACE_ENDPOINT",
    "SMN_ENDPOINT",
    "SMN_TOPIC_URN",
    "MIN_SYSPREP_VERSION",
    "REQUIRE_HIBERNATE",
    "REQUIRE_UPDATE_ROUTE",
    "DRY_RUN",
    "JOB_WAIT_SECONDS",
    "MAX_CONCURRENCY",
)

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
_TOPIC_URN = re.compile(r"urn:smn:([a-z0-9-]+):([0-9A-Za-z]+):([A-Za-z0-9_-]{1,255})")


def _flag(value: object) -> object:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("expected one of true/false/1/0/yes/no")
    return value


def _version(value: object) -> object:
    if isinstance(value, str):
        parsed = parse_version(value)
        if parsed is None:
            raise ValueError("expected a dotted numeric version such as 3.0.10")
        return parsed
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    import ipaddress  # only for a plain http:// endpoint: the cold start of the usual https:// ones skips it

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_HOST = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def _is_ip(host: str) -> bool:
    import ipaddress  # only for a host that is no DNS name: the usual cold start skips it

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _endpoint(value: str) -> str:
    if "@" in value:  # first: a password can hold any character, and must reach no other check's message
        # requests would send them as Basic credentials in place of the signature
        raise ValueError("credentials in the URL are not accepted; give scheme and host only")
    parts = urlsplit(value.strip())
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ValueError("the port is not a number from 0 to 65535") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("expected an absolute URL such as https://workspace.ap-southeast-1.myhuaweicloud.com")
    if not _HOST.fullmatch(parts.hostname) and not _is_ip(parts.hostname):
        raise ValueError("the host is not a DNS name (letters, digits, hyphens and dots; IDNs in punycode) or an IP")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("plain http:// is accepted only for a loopback host (the local emulator); use https://")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise ValueError("expected scheme and host only, without a path")
    return f"{parts.scheme}://{parts.netloc}"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    region: str = Field(pattern=r"^[a-z]{2,}(-[a-z0-9]+)+$")
    project_id: str = Field(pattern=r"^[0-9A-Za-z]{8,64}$")
    workspace_endpoint: str
    smn_endpoint: str
    smn_topic_urn: str | None = None
    min_sysprep_version: Annotated[Version | None, BeforeValidator(_version)] = None
    require_hibernate: Flag = False
    require_update_route: Flag = False
    dry_run: Flag = False
    job_wait_seconds: int = Field(default=600, ge=0, le=3600)
    max_concurrency: int = Field(default=8, ge=1, le=32)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: dict[str, object]) -> dict[str, object]:
        region = data.get("region")
        if isinstance(region, str):
            data.setdefault("workspace_endpoint", default_endpoint("workspace", region))
            data.setdefault("smn_endpoint", default_endpoint("smn", region))
        for key in ("workspace_endpoint", "smn_endpoint"):
            if isinstance(data.get(key), str):
                try:
                    data[key] = _endpoint(data[key])  # type: ignore[arg-type]
                except ValueError as exc:
                    raise _KeyedError(key, str(exc)) from None
        return data

    @model_validator(mode="after")
    def _topic(self) -> Settings:
        if self.smn_topic_urn is None:
            if not self.dry_run:
                raise _KeyedError("smn_topic_urn", "required unless DRY_RUN is true")
            return self
        match = _TOPIC_URN.fullmatch(self.smn_topic_urn)
        if not match:
            raise _KeyedError("smn_topic_urn", "expected urn:smn:{region}:{project_id}:{topic_name}")
        if match.group(1) != self.region or match.group(2) != self.project_id:
            raise _KeyedError(
                "smn_topic_urn",
                f"the topic is in region {match.group(1)!r}, project {match.group(2)!r}, but the function "
                f"publishes in REGION {self.region!r}, PROJECT_ID {self.project_id!r}",
            )
        return self

    @property
    def policy(self) -> Policy:
        return Policy(
            min_version=self.min_sysprep_version,
            require_hibernate=self.require_hibernate,
            require_update_route=self.require_update_route,
        )


class _KeyedError(ValueError):
    """A validator's error that names its key even where pydantic would not."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def load_settings(read: Callable[[str], str | None]) -> Settings:
    """Build the settings from `read(KEY)`; an empty value counts as unset."""
    raw: dict[str, str] = {}
    for key in KEYS:
        value = read(key)
        if value is not None and value.strip() != "":
            raw[key.lower()] = value.strip()
    if "project_id" not in raw:
        runtime = read("RUNTIME_PROJECT_ID")
        if runtime and runtime.strip():
            raw["project_id"] = runtime.strip()
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            ctx = error.get("ctx") or {}
            inner = ctx.get("error")
            if isinstance(inner, _KeyedError):
                problems.append(_describe(inner.key, raw, str(inner)))
                continue
            key = str(error["loc"][0]) if error["loc"] else "?"
            message = str(inner) if inner is not None else error["msg"]
            if error["type"] == "missing":
                message = "is required" + (" (or RUNTIME_PROJECT_ID)" if key == "project_id" else "")
            problems.append(_describe(key, raw, message))
        raise ConfigError("; ".join(problems)) from None


def _describe(key: str, raw: dict[str, str], message: str) -> str:
    name = key.upper()
    # An endpoint that carries credentials is not shown at all: a password can hold any character.
    shown = "" if key not in raw or "@" in raw[key] else "=" + repr(clip(raw[key], 200))
    return f"configuration {name}{shown}: {message}. Set {name} in the function's environment variables"
