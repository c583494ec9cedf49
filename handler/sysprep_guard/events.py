"""Trigger events: one pydantic model per trigger, unwrapped in `parse_event` and nowhere else."""

# No `from __future__ import annotations`: this module's models are made at every cold start, and with it pydantic
# would evaluate each field's annotation from its text.

import json
import re
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import EventError
from .logs import log
from .models import is_desktop_id
from .text import clip
from .traces import BY_NAME, SERVICE_TYPE

# ShowJob's job_id: 1 to 255 characters (its definition); ids are hex or UUIDs, so nothing that could change the
# path it is put in (a slash, a dot, a query) is accepted.
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}")

MAX_MANUAL_IDS = 10_000
MAX_TRACE_JOBS = 50  # jobs followed from one trace; a batch order makes a few, never thousands
_WALK_NODES = 10_000  # bound on how much of a trace's request/response is searched for ids


# What an event asks for, once unwrapped: made from a validated event here, never from outside input, so plain
# values (NamedTuples) rather than models.
class Sweep(NamedTuple):
    full_report: bool = False  # asked for: {"sweep": true, "full_report": true}
    weekday: str | None = None  # a timer's, in the timer's own time zone: the day FULL_REPORT_DAY is about
    target: str | None = None  # one configured target's key (region/project_id) or name; None: all of them
    dispatched_by: str | None = None  # a fanned-out target's: the dispatching invocation's request id


class Check(NamedTuple):
    desktop_ids: tuple[str, ...] = ()
    job_ids: tuple[str, ...] = ()
    jobs_not_followed: int = 0  # job ids beyond MAX_TRACE_JOBS: reported, not polled


class Skip(NamedTuple):
    reason: str


Work = Sweep | Check | Skip


class Invocation(NamedTuple):
    trigger: Literal["timer", "cts", "eventgrid", "manual"]
    work: Work


def _desktop_id(value: str, where: str) -> str:
    if not is_desktop_id(value):
        raise EventError(
            f"{where}: {clip(value)!r} is not a Workspace desktop id (expected a UUID such as "
            "f77db5cd-c020-47d4-bbbe-9b979a38d18c)"
        )
    return value.lower()


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


class TimerEvent(BaseModel):
    """Only trigger_type is read: the rest may take any shape (the console's test events vary)."""

    model_config = ConfigDict(extra="ignore")

    trigger_type: Literal["TIMER"]
    time: Any = None
    trigger_name: Any = None
    user_event: Any = None

    @model_validator(mode="before")
    @classmethod
    def _no_desktops(cls, data: object) -> object:
        if isinstance(data, dict) and ("desktop_ids" in data or "sweep" in data):
            # It would sweep everything while its sender meant some desktops: say so instead.
            raise ValueError(
                "a TIMER event sweeps the whole project and names no desktops; to check some, send a manual "
                'event {"desktop_ids": [...]} without trigger_type'
            )
        return data

    def work(self) -> Work:
        return Sweep(weekday=_weekday(self.time))


def _weekday(when: object) -> str | None:
    """The day of a timer's `time` ("2026-11-28T02:00:00+08:00"), where it fired; None when unreadable."""
    if not isinstance(when, str):
        return None
    try:
        return datetime.fromisoformat(when.replace("Z", "+00:00")).strftime("%A").lower()
    except ValueError:
        return None


class CtsTrace(BaseModel):
    """A CTS trace as FunctionGraph's CTS trigger and EventGrid deliver it. CTS documents `code`, `request` and
    `response` as strings (request and response JSON text, possibly empty); older samples show `code` as a number,
    `resource_id` as an object, and `trace_status` where CTS now has `trace_rating`: each is accepted."""

    model_config = ConfigDict(extra="ignore", defer_build=True)  # see EVENTS

    trace_name: str
    service_type: str | None = None
    resource_type: str | None = None
    resource_id: Any = None
    trace_rating: str | None = None  # normal, warning or incident
    trace_status: str | None = None  # older samples' name for it
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

    def work(self) -> Work:
        name = self.trace_name
        if (self.service_type or "").lower() != SERVICE_TYPE.lower():
            return Skip(reason=f"trace {name!r} is from service {self.service_type!r}, not {SERVICE_TYPE}")
        trace = BY_NAME.get(name.lower())
        if trace is None:
            return Skip(reason=f"trace {name!r} neither creates nor re-images desktops")
        rating = self.trace_rating or self.trace_status
        if rating and rating.lower() != "normal":
            return Skip(reason=f"trace {name!r} is rated {rating!r}: the operation failed")
        if self.code is not None and self.code >= 400:
            return Skip(reason=f"trace {name!r} has code {self.code}: the operation failed")
        kind = _request_type(self.request)
        if trace.request_types is not None and kind is not None and kind not in trace.request_types:
            return Skip(reason=f"trace {name!r} is of type {clip(kind)!r}, which changes no desktop's image")

        found: dict[str, list[str]] = {"desktop_id": [], "desktop_ids": [], "job_id": []}
        _collect(self.request, found)
        _collect(self.response, found)
        jobs = _unique([j.strip() for j in found["job_id"] if j.strip()])
        job_ids = tuple(j for j in jobs if JOB_ID.fullmatch(j))
        # Where each field's content is undocumented (resource_id may name an order, the job or, for a pool's
        # operations, the pool), what is not a desktop id is passed over and named in the log.
        named = found["desktop_id"] + found["desktop_ids"]
        if not trace.resource_is_pool:
            named += _strings(self.resource_id)
        candidates = [c.strip() for c in named]
        ids = _unique([c.lower() for c in candidates if is_desktop_id(c)])
        others = [c for c in candidates if c and not is_desktop_id(c) and c not in jobs]
        others += [j for j in jobs if j not in job_ids]
        if others:
            log.info(
                "values that are not desktop or job ids passed over",
                trace_name=name,
                values=[clip(o) for o in others[:5]],
            )
        if not ids and not job_ids:
            # Nothing lost: the next sweep checks whatever the operation made. Failing would only make the
            # platform retry an event that can never name more.
            return Skip(
                reason=f"trace {name!r} (trace_id {clip(str(self.trace_id))!r}) names no desktop and no job: expected "
                "desktop ids (UUIDs) in resource_id, request or response, or a job_id in the response; the next "
                "sweep checks the desktops it made"
            )
        log.info("trace accepted", trace_name=trace.name, effect=trace.effect, desktops=len(ids), jobs=len(job_ids))
        return Check(
            desktop_ids=ids,
            job_ids=job_ids[:MAX_TRACE_JOBS],
            jobs_not_followed=max(0, len(job_ids) - MAX_TRACE_JOBS),
        )


def _request_type(request: object) -> str | None:
    """The `type` of an order's request (CreateOrderReq, CreateBatchChangeOrderRequestBody), when recorded."""
    if isinstance(request, dict):
        kind = request.get("type")
        if isinstance(kind, str):
            return kind.strip()
    return None


def _strings(node: object) -> list[str]:
    """resource_id: a comma-separated string, or (older samples) an object or list holding strings."""
    texts = [node] if isinstance(node, str) else [text for _, text in _leaves(node)]
    return [piece for text in texts for piece in text.split(",")]


def _collect(node: object, found: dict[str, list[str]]) -> None:
    """Gather the strings held under keys named desktop_id, desktop_ids and job_id anywhere in `node`."""
    for key, text in _leaves(node):
        if key in found:
            found[key].append(text)


def _leaves(node: object) -> Iterator[tuple[str | None, str]]:
    """(key, text) for each string in `node`, in document order (a list passes its key on), a bounded number."""
    queue: deque[tuple[str | None, object]] = deque([(None, node)])
    seen = 0
    while queue and seen < _WALK_NODES:
        key, item = queue.popleft()
        seen += 1
        if isinstance(item, str):
            yield key, item
        elif isinstance(item, dict):
            queue.extend((str(k), v) for k, v in item.items())
        elif isinstance(item, list):
            queue.extend((key, v) for v in item)


class CtsEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    cts: CtsTrace

    def work(self) -> Work:
        return self.cts.work()


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    specversion: str
    id: str | None = None
    source: str | None = None
    type: str = ""
    data: Any = None

    def work(self) -> Work:
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
                f"malformed eventgrid event {self.id!r}: data is not a CTS trace ({_first(exc)})"
            ) from None
        return trace.work()


class ManualEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    desktop_ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_MANUAL_IDS)
    sweep: Literal[True] | None = None
    full_report: bool = False  # with "sweep": publish the full report even with NOTIFY=changes
    target: str | None = Field(default=None, min_length=1, max_length=200)  # with "sweep": one of TARGETS

    @model_validator(mode="after")
    def _one(self) -> "ManualEvent":
        if (self.desktop_ids is None) == (self.sweep is None):
            raise ValueError('give either "desktop_ids" or "sweep": true')
        if self.target is not None and not self.sweep:
            raise ValueError('"target" goes with "sweep": true (desktop ids are looked up in PROJECT_ID)')
        return self

    def work(self) -> Work:
        if self.sweep:
            return Sweep(full_report=self.full_report, target=self.target)
        ids = [_desktop_id(v, "manual event desktop_ids") for v in self.desktop_ids or ()]
        return Check(desktop_ids=_unique(ids))


class TargetSweep(BaseModel):
    """What a fanned-out sweep sends each target's invocation (dispatch.py): which target, and the sweep's own
    trigger and weekday. The target must be one of TARGETS (the orchestrator checks): an event from elsewhere can
    choose among the configured places, never add one."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    target: str = Field(min_length=1, max_length=200)
    trigger: Literal["timer", "manual"]
    weekday: str | None = Field(default=None, max_length=9)
    full_report: bool = False
    dispatched_by: str | None = Field(default=None, max_length=100)  # the dispatching invocation's request id


class TargetSweepEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    target_sweep: TargetSweep

    def work(self) -> Work:
        sweep = self.target_sweep
        return Sweep(sweep.full_report, sweep.weekday, sweep.target, sweep.dispatched_by)


def _kind(raw: object) -> str | None:
    if not isinstance(raw, dict):
        return None
    if "target_sweep" in raw:
        return "target"
    if raw.get("trigger_type") == "TIMER":
        return "timer"
    if "cts" in raw:
        return "cts"
    if "specversion" in raw:
        return "eventgrid"
    if "desktop_ids" in raw or "sweep" in raw:
        return "manual"
    return None


# The model of each kind of event, chosen by _kind. The nightly timer's is built at import; the others
# (defer_build) when an event of their kind first comes, so that an instance never builds what it is not sent.
EVENTS: dict[str, type[TimerEvent | CtsEvent | CloudEvent | ManualEvent | TargetSweepEvent]] = {
    "timer": TimerEvent,
    "cts": CtsEvent,
    "eventgrid": CloudEvent,
    "manual": ManualEvent,
    "target": TargetSweepEvent,
}

EXPECTED = (
    'expected a TIMER trigger event, a CTS trace {"cts": {...}}, an EventGrid CloudEvent '
    '{"specversion": "1.0", "type": ..., "data": {...}}, a manual test {"desktop_ids": [...]} or {"sweep": true}, '
    'or a target sweep {"target_sweep": {...}}'
)


def parse_event(raw: object) -> Invocation:
    """The one place where a raw event becomes what the function should do."""
    kind = _kind(raw)
    if kind is None:
        got = f"an object with keys {sorted(map(str, raw))[:10]}" if isinstance(raw, dict) else type(raw).__name__
        raise EventError(f"unrecognised event: {EXPECTED}; got {clip(got)}")
    try:
        event = EVENTS[kind].model_validate(raw)
    except ValidationError as exc:
        raise EventError(f"malformed {kind} event: {_first(exc)}") from None
    if isinstance(event, TargetSweepEvent):  # the sweep it is part of was started by this trigger
        return Invocation(trigger=event.target_sweep.trigger, work=event.work())
    return Invocation(trigger=kind, work=event.work())


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where or 'event'}: {error['msg']}{more}"
