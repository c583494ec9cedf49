"""Run history in OBS: one object per run, append-only, and what a run must announce given the others.

Keys sort by time: `{prefix}runs/{project_id}/{yyyy}/{mm}/{dd}/{started}-{kind}-{run_id}.json.gz`, kind `sweep`,
`partial` (an incomplete sweep) or `event`. After deciding and publishing, a run adds
`{...}-{run_id}.done.{delivered|undelivered}.json`, holding the runs it saw.

OBS has no compare-and-swap, so runs never overwrite, and overlapping runs settle who announces what:
1. a run writes its object first, then lists: of two overlapping runs, at least one sees the other;
2. its baseline is the runs that started before it (and delivered what they had to, or may still);
3. a later-started run that decided without it (or an event, which announces all it finds) already announced what
   it covers: the earlier one leaves those desktops out (it waits a few seconds for that run's `done`; with none,
   it announces: a copy rather than a loss).
A change is then announced once, by the run that saw it first or by the later run that covers it.
"""

from __future__ import annotations

import gzip
import re
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ValidationError

from .changes import Baseline
from .errors import ApiError
from .logs import log

SCHEMA_VERSION = 1
LOOK_BACK_DAYS = 40  # a complete sweep older than this is no baseline: the next sweep reports in full
UNDELIVERED_AFTER = timedelta(minutes=20)  # a run with no `done` this old failed: what it found was not announced
_KEY = re.compile(
    r"(?P<started>\d{8}T\d{9}Z)-(?P<kind>sweep|partial|event)-(?P<run_id>[0-9a-f]{12})"
    r"(?:\.json\.gz|\.done\.(?P<done>delivered|undelivered)\.json)"
)

Kind = Literal["sweep", "partial", "event"]


class Record(BaseModel):
    """One run, as stored (gzipped JSON): what it found, compactly."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    started: str  # ISO 8601 UTC with milliseconds
    trigger: str
    kind: Kind
    project_id: str
    region: str
    policy: dict[str, Any]
    counts: dict[str, int | None]
    unchecked_by_reason: dict[str, int] = {}
    findings: dict[str, list[str]] = {}
    unchecked: dict[str, str] = {}  # at most the summary's listed ones: id -> reason head
    compliant: list[str] = []  # an event's desktops found compliant (a rebuild may fix one)
    exempt: dict[str, str] = {}  # at most the summary's listed ones: id -> why

    def covers(self) -> set[str] | None:
        """The desktops this run judged or tried to (None: all of them, a complete sweep)."""
        if self.kind == "sweep":
            return None
        return {*self.findings, *self.unchecked, *self.compliant}


class Done(BaseModel):
    run_id: str
    view: list[str]  # the runs it saw when it decided
    notified: str  # "changes", "full" or "nothing"


@dataclass(frozen=True)
class Entry:
    """A run as its keys show it."""

    started: str
    kind: Kind
    run_id: str
    key: str
    done: str | None = None  # "delivered", "undelivered", or None (not yet, or never)

    @property
    def time(self) -> datetime:
        return datetime.strptime(self.started, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"


def run_key(prefix: str, project_id: str, started: datetime, kind: Kind, run_id: str) -> str:
    return f"{_folder(prefix, project_id)}{started:%Y/%m/%d}/{stamp(started)}-{kind}-{run_id}.json.gz"


def done_key(record_key: str, delivered: bool) -> str:
    return record_key.removesuffix(".json.gz") + f".done.{'delivered' if delivered else 'undelivered'}.json"


def _folder(prefix: str, project_id: str) -> str:
    return f"{prefix}runs/{project_id}/"


def encode(record: Record) -> bytes:
    # mtime=0: the same record gives the same bytes
    return gzip.compress(record.model_dump_json(exclude_defaults=False).encode(), mtime=0)


def decode(data: bytes) -> Record:
    return Record.model_validate_json(gzip.decompress(data))


def entries(keys: Iterable[str]) -> list[Entry]:
    """The runs among these keys, their `done` joined in, in time order. Other keys are left alone."""
    records: dict[str, Entry] = {}
    dones: dict[str, str] = {}
    for key in keys:
        match = _KEY.search(key)
        if match is None:
            continue
        if match["done"]:
            dones[match["run_id"]] = match["done"]
        else:
            records[match["run_id"]] = Entry(match["started"], match["kind"], match["run_id"], key)  # type: ignore[arg-type]
    found = [Entry(e.started, e.kind, e.run_id, e.key, dones.get(e.run_id)) for e in records.values()]
    return sorted(found, key=lambda e: (e.started, e.run_id))


class Store(Protocol):
    """What the history needs of OBS (obs_store.ObsStore)."""

    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def keys(self, prefix: str, marker: str | None = None) -> Iterable[str]: ...


class History:
    """One project's runs in one bucket and prefix."""

    def __init__(self, store: Store, prefix: str, project_id: str) -> None:
        self.store = store
        self.folder = _folder(prefix, project_id)
        self.prefix = prefix
        self.project_id = project_id

    def list(self, now: datetime) -> list[Entry]:
        since = now - timedelta(days=LOOK_BACK_DAYS)
        return entries(self.store.keys(self.folder, marker=f"{self.folder}{since:%Y/%m/%d}/"))

    def record(self, entry: Entry) -> Record | None:
        try:
            return decode(self.store.get(entry.key))
        except (ApiError, OSError, EOFError, zlib.error, ValueError, ValidationError) as exc:  # left out, and said
            log.warning("a run object could not be read; left out", key=entry.key, error=type(exc).__name__)
            return None

    def done(self, entry: Entry) -> Done | None:
        if entry.done is None:
            return None
        try:
            return Done.model_validate_json(self.store.get(done_key(entry.key, entry.done == "delivered")))
        except (ApiError, ValueError, ValidationError):
            return None

    def baseline(self, runs: list[Entry], me: Entry, now: datetime) -> Baseline:
        """What was last announced before `me`: the last complete sweep that delivered, and what came after."""
        earlier = [e for e in runs if (e.started, e.run_id) < (me.started, me.run_id) and _delivered(e, now)]
        start = max((i for i, e in enumerate(earlier) if e.kind == "sweep"), default=None)
        if start is None:
            return Baseline()
        findings: dict[str, list[str]] = {}
        unchecked: dict[str, str] = {}
        since = policy = None
        for entry in earlier[start:]:
            record = self.record(entry)
            if record is None:
                if entry is earlier[start]:
                    return Baseline(unreadable=True)  # the run reports in full
                continue
            since, policy = since or record.started, policy or record.policy
            findings.update(record.findings)
            for desktop_id in record.compliant:
                findings.pop(desktop_id, None)
            if record.kind != "event":
                unchecked = dict(record.unchecked)
        return Baseline(since=since, policy=policy, findings=findings, unchecked=unchecked)

    def covered_by_later(
        self, me: Entry, runs: list[Entry], relist: Callable[[], list[Entry]], wait: Callable[[], bool]
    ) -> tuple[set[str] | None, list[str]]:
        """The desktops later-started runs announced without having seen `me` (None: all), and their ids.
        A later run still deciding is waited for while `wait()` says so; one that never says is not deferred to."""
        covered: set[str] = set()
        deferred: list[str] = []
        pending = [e for e in runs if (e.started, e.run_id) > (me.started, me.run_id)]
        while pending:
            undecided = []
            for later in pending:
                if later.done is None:
                    undecided.append(later)
                    continue
                done = self.done(later)
                if done is None or later.done != "delivered":
                    continue  # it announced nothing
                if me.run_id in done.view and later.kind != "event":
                    continue  # a sweep that folded `me` in announced only what came after (an event, all it found)
                record = self.record(later)
                if record is None:
                    continue
                deferred.append(later.run_id)
                runs = record.covers()
                if runs is None:
                    return None, deferred
                covered |= runs
            if not undecided or not wait():
                break
            fresh = {e.run_id: e for e in relist()}
            pending = [fresh.get(e.run_id, e) for e in undecided]
        return covered, deferred


def _delivered(entry: Entry, now: datetime) -> bool:
    """Whether what the run found counts as announced: it delivered (or had nothing to), or may still."""
    if entry.done is not None:
        return entry.done == "delivered"
    return now - entry.time < UNDELIVERED_AFTER
