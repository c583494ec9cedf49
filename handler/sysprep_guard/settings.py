"""Configuration: read once per cold start from the function's user data, validated into one object."""

# No `from __future__ import annotations`: this module's models are made at every cold start, and with it pydantic
# would evaluate each field's annotation from its text.

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Literal
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
from .exemptions import parse_ids, parse_tag
from .policy import Policy, Version, parse_version
from .targets import Target, parse_targets
from .text import clip

# Every key the code reads; template.yml declares the same set (a test checks both ways).
# FunctionGraph takes at most 20 user-data entries: one ENDPOINTS key serves every service.
KEYS = (
    "REGION",
    "PROJECT_ID",
    "ENDPOINTS",
    "SMN_TOPIC_URN",
    "MIN_SYSPREP_VERSION",
    "REQUIRE_HIBERNATE",
    "REQUIRE_UPDATE_ROUTE",
    "DRY_RUN",
    "JOB_WAIT_SECONDS",
    "MAX_CONCURRENCY",
    "STATE_BUCKET",
    "STATE_PREFIX",
    "NOTIFY",
    "FULL_REPORT_DAY",
    "METRICS",
    "TARGETS",
    "FAN_OUT",
    "EXEMPT_TAG",
    "EXEMPT_DESKTOP_IDS",
)
# The services the function may call, by their endpoint names (iam: agencies in member accounts; functiongraph: the
# asynchronous invocations of a fan-out).
SERVICES = ("workspace", "smn", "obs", "ces", "iam", "functiongraph")

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
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
_OBS_URL = re.compile(r"obs://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\s]{1,1024})")


class ObsObject(BaseModel):
    """`obs://bucket/key`: a value too long for user data, kept in an OBS object (read with the function's keys)."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str

    @classmethod
    def parse(cls, text: str) -> "ObsObject | None":
        match = _OBS_URL.fullmatch(text.strip())
        return cls(bucket=match["bucket"], key=match["key"]) if match else None

    def __str__(self) -> str:
        return f"obs://{self.bucket}/{self.key}"


def _targets(value: object) -> object:
    if isinstance(value, str):
        return ObsObject.parse(value) or parse_targets(value)
    return value


def _exempt_tag(value: object) -> object:
    return parse_tag(value) if isinstance(value, str) else value


def _exempt_ids(value: object) -> object:
    if isinstance(value, str):
        return ObsObject.parse(value) or parse_ids(value)
    return value


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


EVERYWHERE = "*"  # ENDPOINTS as one URL (the local emulator): every service, every region


def _endpoints(value: object) -> object:
    """ENDPOINTS: one URL for every service (the local emulator), or `service=URL` pairs separated by commas."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if "=" not in text:
        return {EVERYWHERE: _endpoint(text)}
    endpoints = {}
    for pair in text.split(","):
        service, sep, url = pair.strip().partition("=")
        service = service.strip().lower()
        if not sep or service not in SERVICES:
            raise ValueError(
                f"expected a URL, or service=URL pairs separated by commas with services among {', '.join(SERVICES)}"
            )
        endpoints[service] = _endpoint(url)
    return endpoints


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
    endpoints: dict[str, str] = {}  # as configured; endpoint() fills in each region's default
    smn_topic_urn: str | None = None
    min_sysprep_version: Annotated[Version | None, BeforeValidator(_version)] = None
    require_hibernate: Flag = False
    require_update_route: Flag = False
    dry_run: Flag = False
    job_wait_seconds: int = Field(default=600, ge=0, le=3600)
    max_concurrency: int = Field(default=8, ge=1, le=32)
    # Run history in OBS (optional): each run's findings, for alerts on change and for the trend.
    state_bucket: str | None = None
    state_prefix: str = Field(default="sysprep-guard/", pattern=r"^([A-Za-z0-9!_.*'()-]+/)*$")
    notify: Literal["changes", "all"] = "all"  # "changes" by default when STATE_BUCKET is set
    full_report_day: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "never"] = (
        "monday"
    )
    metrics: Flag = False
    # The estate: the places a sweep covers, inline or in an OBS object (read when a sweep starts).
    targets: Annotated[tuple[Target, ...] | ObsObject, BeforeValidator(_targets)] = ()
    fan_out: Flag = True  # several targets: one asynchronous invocation of this function each
    exempt_tag: Annotated[tuple[str, str | None] | None, BeforeValidator(_exempt_tag)] = None
    exempt_desktop_ids: Annotated[dict[str, date | None] | ObsObject, BeforeValidator(_exempt_ids)] = {}

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: dict[str, object]) -> dict[str, object]:
        if "endpoints" in data:
            try:
                data["endpoints"] = _endpoints(data["endpoints"])
            except ValueError as exc:
                raise _KeyedError("endpoints", str(exc)) from None
        for key in ("notify", "full_report_day"):
            if isinstance(data.get(key), str):
                data[key] = data[key].strip().lower()  # type: ignore[union-attr]
        prefix = data.get("state_prefix")
        if isinstance(prefix, str) and prefix and not prefix.endswith("/"):
            data["state_prefix"] = prefix + "/"
        bucket = data.get("state_bucket")
        if isinstance(bucket, str) and not _BUCKET.fullmatch(bucket):
            raise _KeyedError("state_bucket", "an OBS bucket name: 3 to 63 lower-case letters, digits, hyphens, dots")
        if bucket and "notify" not in data:
            data["notify"] = "changes"
        return data

    def endpoint(self, service: str, region: str | None = None) -> str:
        """The service's endpoint in `region` (default: the function's). A `service=URL` override is the
        function's region's (a target elsewhere is called in its own region); one URL alone serves everything."""
        everywhere = self.endpoints.get(EVERYWHERE)
        if everywhere is not None:
            return everywhere
        region = region or self.region
        return (region == self.region and self.endpoints.get(service)) or default_endpoint(service, region)

    @property
    def home(self) -> Target:
        """The function's own project: the only place checked without TARGETS, and where events' desktops are."""
        return Target(region=self.region, project_id=self.project_id)

    @property
    def workspace_endpoint(self) -> str:
        return self.endpoint("workspace")

    @property
    def smn_endpoint(self) -> str:
        return self.endpoint("smn")

    @model_validator(mode="after")
    def _topic(self) -> "Settings":
        if self.notify == "changes" and self.state_bucket is None:
            raise _KeyedError(
                "notify", "changes needs STATE_BUCKET: without the last run's findings nothing says what changed"
            )
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
