"""Trigger events: one pydantic model per trigger, unwrapped in `parse_event` and nowhere else."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import EventError
from .logs import log
from .text import clip

DESKTOP_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Workspace trace names that create desktops, lower-cased. Huawei does not document the exact set
# (see REFERENCE.md), so this errs wide; a trace that is skipped is logged with its name.
CREATE_DESKTOP_TRACES = frozenset(
    name.lower()
    for name in (
        "createDesktop",
        "createDesktops",
        "batchCreateDesktops",
        "createDesktopOrder",
        "createDesktopsOrder",
        "createDesktopsByOrder",
        "createPrepaidDesktops",
        "createPostpaidDesktops",
    )
)

MAX_MANUAL_IDS = 10_000
_WALK_NODES = 10_000  # bound on how much of a trace's request/response is searched for ids


# What an event asks for, once unwrapped.
class Sweep(BaseModel):
    kind: Literal["sweep"] = "sweep"


class Check(BaseModel):
    kind: Literal["check"] = "check"
    desktop_ids: tuple[str, ...] = ()
    job_ids: tuple[str, ...] = ()


class Skip(BaseModel):
    kind: Literal["skip"] = "skip"
    reason: str


Target = Sweep | Check | Skip


class Invocation(BaseModel):
    trigger: Literal["timer", "cts", "eventgrid", "manual"]
    target: Target


def _desktop_id(value: str, where: str) -> str:
    if not DESKTOP_ID.match(value):
        raise EventError(
            f"{where}: {clip(value)!r} is not a Workspace desktop id (expected a UUID such as "
            "f77db5cd-c020-47d4-bbbe-9b979a38d18c)"
        )
    return value.lower()


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


class TimerEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    trigger_type: Literal["TIMER"]
    time: str | None = None
    trigger_name: str | None = None
    user_event: str | None = None

    def target(self) -> Target:
        return Sweep()


class CtsTrace(BaseModel):
    model_config = ConfigDict(extra="ignore")

    trace_name: str
    service_type: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    trace_status: str | None = None
    trace_id: str | None = None
    code: int | None = None
    request: Any = None
    response: Any = None

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, value: object) -> object:
        """200, "200", "500.0" and 500.0 all count; anything else is no code at all."""
        if isinstance(value, bool):
            return None
        if isinstance(value, (str, float)):
            try:
                return int(float(value))
            except (ValueError, OverflowError):
                return None
        return value

    @field_validator("request", "response", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except (ValueError, RecursionError):  # RecursionError: hostile nesting
                return None
        return value

    def target(self) -> Target:
        name = self.trace_name
        if (self.service_type or "").lower() != "workspace":
            return Skip(reason=f"trace {name!r} is from service {self.service_type!r}, not Workspace")
        if name.lower() not in CREATE_DESKTOP_TRACES:
            return Skip(reason=f"trace {name!r} does not create desktops")
        if self.trace_status and self.trace_status.lower() != "normal":
            return Skip(reason=f"trace {name!r} has status {self.trace_status!r}: the creation failed")
        if self.code is not None and self.code >= 400:
            return Skip(reason=f"trace {name!r} has code {self.code}: the creation failed")

        found: dict[str, list[str]] = {"desktop_id": [], "desktop_ids": [], "job_id": []}
        _collect(self.request, found)
        _collect(self.response, found)
        job_ids = _unique([j.strip() for j in found["job_id"] if j.strip()])
        # Where each field's content is undocumented (resource_id may name an order or the job), what is not a
        # desktop id is passed over, and named in the log; only a trace with no desktop and no job is refused.
        candidates = [
            c.strip() for c in found["desktop_id"] + found["desktop_ids"] + (self.resource_id or "").split(",")
        ]
        ids = _unique([c.lower() for c in candidates if DESKTOP_ID.match(c)])
        others = [c for c in candidates if c and not DESKTOP_ID.match(c) and c not in job_ids]
        if not ids and not job_ids:
            raise EventError(
                f"CTS trace {name!r} (trace_id {self.trace_id!r}) names no desktop: expected desktop ids (UUIDs) in "
                f"resource_id, request or response, or a job_id in the response; found {clip(repr(others[:3]))}"
            )
        if others:
            log.info(
                "values that are not desktop ids passed over", trace_name=name, values=[clip(o) for o in others[:5]]
            )
        return Check(desktop_ids=ids, job_ids=job_ids)


def _collect(node: object, found: dict[str, list[str]]) -> None:
    """Gather the values of keys named desktop_id, desktop_ids and job_id anywhere in `node`."""
    stack, seen = [node], 0
    while stack and seen < _WALK_NODES:
        item = stack.pop()
        seen += 1
        if isinstance(item, dict):
            for key, value in item.items():
                if key in found and isinstance(value, str):
                    found[key].append(value)
                elif key == "desktop_ids" and isinstance(value, list):
                    found[key].extend(v for v in value if isinstance(v, str))
                    stack.extend(v for v in value if isinstance(v, (dict, list)))
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


class CtsEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cts: CtsTrace

    def target(self) -> Target:
        return self.cts.target()


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    specversion: str
    id: str | None = None
    source: str | None = None
    type: str = ""
    data: Any = None

    def target(self) -> Target:
        if "cloudtrace" not in self.type.lower():
            return Skip(reason=f"CloudEvent of type {self.type!r} does not carry a CTS trace")
        data = self.data
        if isinstance(data, str):
            data = CtsTrace._json(data)
        if isinstance(data, dict) and isinstance(data.get("cts"), dict):
            data = data["cts"]
        try:
            trace = CtsTrace.model_validate(data)
        except ValidationError as exc:
            raise EventError(
                f"malformed eventgrid event {self.id!r}: data is not a CTS trace ({_first(exc, tagged=False)})"
            ) from None
        return trace.target()


class ManualEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    desktop_ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_MANUAL_IDS)
    sweep: Literal[True] | None = None

    @model_validator(mode="after")
    def _one(self) -> ManualEvent:
        if (self.desktop_ids is None) == (self.sweep is None):
            raise ValueError('give either "desktop_ids" or "sweep": true')
        return self

    def target(self) -> Target:
        if self.sweep:
            return Sweep()
        ids = [_desktop_id(v, "manual event desktop_ids") for v in self.desktop_ids or ()]
        return Check(desktop_ids=_unique(ids))


def _kind(raw: object) -> str | None:
    if not isinstance(raw, dict):
        return None
    if raw.get("trigger_type") == "TIMER":
        return "timer"
    if "cts" in raw:
        return "cts"
    if "specversion" in raw:
        return "eventgrid"
    if "desktop_ids" in raw or "sweep" in raw:
        return "manual"
    return None


Event = Annotated[
    Annotated[TimerEvent, Tag("timer")]
    | Annotated[CtsEvent, Tag("cts")]
    | Annotated[CloudEvent, Tag("eventgrid")]
    | Annotated[ManualEvent, Tag("manual")],
    Discriminator(_kind),
]
_EVENT = TypeAdapter(Event)

EXPECTED = (
    'expected a TIMER trigger event, a CTS trace {"cts": {...}}, an EventGrid CloudEvent '
    '{"specversion": "1.0", "type": ..., "data": {...}}, or a manual test {"desktop_ids": [...]} or {"sweep": true}'
)


def parse_event(raw: object) -> Invocation:
    """The one place where a raw event becomes what the function should do."""
    kind = _kind(raw)
    if kind is None:
        got = f"an object with keys {sorted(map(str, raw))[:10]}" if isinstance(raw, dict) else type(raw).__name__
        raise EventError(f"unrecognised event: {EXPECTED}; got {clip(got)}")
    try:
        event = _EVENT.validate_python(raw)
    except ValidationError as exc:
        raise EventError(f"malformed {kind} event: {_first(exc)}") from None
    return Invocation(trigger=kind, target=event.target())


def _first(exc: ValidationError, tagged: bool = True) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"][1 if tagged else 0 :])  # a union's loc starts with its tag
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where or 'event'}: {error['msg']}{more}"
