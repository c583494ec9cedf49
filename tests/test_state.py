"""The run history's logic, over an in-memory store: what changed, what the baseline is, who announces what."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import pytest

from conftest import uuid_for
from sysprep_guard.changes import Baseline, compare, without
from sysprep_guard.state import (
    Done,
    Entry,
    History,
    Record,
    decode,
    done_key,
    encode,
    entries,
    run_key,
    stamp,
)

PROJECT = "0123456789abcdef0123456789abcdef"
PREFIX = "sysprep-guard/"
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # a Monday
BELOW, NO_HIB = ["sysprep_version_below_minimum"], ["hibernate_not_supported"]


class Memory:
    """A bucket: keys in order, listed after a marker, as OBS lists them."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    def get(self, key: str) -> bytes:
        return self.objects[key]

    def keys(self, prefix: str, marker: str | None = None) -> Iterable[str]:
        return [k for k in sorted(self.objects) if k.startswith(prefix) and (marker is None or k > marker)]


def record(run_id: str, started: datetime, kind: str = "sweep", **fields: object) -> Record:
    return Record(
        run_id=run_id,
        started=started.isoformat(),
        trigger="timer" if kind != "event" else "cts",
        kind=kind,  # type: ignore[arg-type]
        project_id=PROJECT,
        region="ap-southeast-1",
        policy={},
        counts={},
        **fields,  # type: ignore[arg-type]
    )


def save(store: Memory, run: Record, at: datetime, done: bool | None = True, view: list[str] = ()) -> Entry:
    key = run_key(PREFIX, PROJECT, at, run.kind, run.run_id)
    store.put(key, encode(run))
    if done is not None:
        store.put(
            done_key(key, done), Done(run_id=run.run_id, view=list(view), notified="full").model_dump_json().encode()
        )
    return Entry(
        stamp(at), run.kind, run.run_id, key, None if done is None else ("delivered" if done else "undelivered")
    )


def me_at(at: datetime, run_id: str = "ffffffffffff") -> Entry:
    return Entry(stamp(at), "sweep", run_id, run_key(PREFIX, PROJECT, at, "sweep", run_id))


# What changed -------------------------------------------------------------------------------------------------


def test_a_sweep_reports_new_changed_fixed_and_gone_and_counts_the_rest() -> None:
    a, b, c, d, e, f = (uuid_for(n) for n in range(1, 7))
    baseline = Baseline(since="x", findings={a: BELOW, b: BELOW, c: NO_HIB, d: BELOW, f: BELOW})
    listed = {a, b, c, e, f}.__contains__
    changes = compare(baseline, {a: BELOW, b: NO_HIB, e: BELOW}, {f: "APIG.0308"}, listed, complete=True)
    assert changes.new == [e] and changes.changed == {b: BELOW} and changes.still == 1
    assert [(r.desktop_id, r.how) for r in changes.resolved] == [(c, "fixed"), (d, "gone")]
    assert changes.any and changes.newly_unchecked == 1 and changes.persisting == []  # f: not judged, not fixed


def test_an_incomplete_sweep_never_calls_a_desktop_it_did_not_reach_gone() -> None:
    baseline = Baseline(since="x", findings={uuid_for(1): BELOW})
    changes = compare(baseline, {}, {}, lambda _: False, complete=False)
    assert changes.resolved == [] and not changes.any


def test_desktops_unchecked_twice_in_a_row_are_reported_once_only_counted() -> None:
    baseline = Baseline(since="x", unchecked={uuid_for(1): "APIG.0308"})
    changes = compare(baseline, {}, {uuid_for(1): "APIG.0308", uuid_for(2): "deadline"}, lambda _: True, True)
    assert changes.persisting == [uuid_for(1)] and changes.newly_unchecked == 1 and changes.any


def test_changes_about_desktops_a_later_run_covers_are_left_to_it() -> None:
    baseline = Baseline(since="x", findings={uuid_for(1): BELOW})
    changes = compare(baseline, {uuid_for(2): BELOW}, {}, lambda _: True, True)
    assert without(changes, {uuid_for(2)}).new == [] and without(changes, {uuid_for(2)}).resolved
    assert not without(changes, None).any


# Keys and objects ---------------------------------------------------------------------------------------------


def test_keys_sort_by_time_and_name_kind_and_run() -> None:
    key = run_key(PREFIX, PROJECT, T0 + timedelta(milliseconds=7), "partial", "0123456789ab")
    assert key == f"{PREFIX}runs/{PROJECT}/2026/11/23/20261123T020000007Z-partial-0123456789ab.json.gz"
    later = run_key(PREFIX, PROJECT, T0 + timedelta(seconds=1), "event", "000000000000")
    assert later > key
    (entry,) = entries([key, done_key(key, False), "sysprep-guard/other/file"])
    assert (entry.kind, entry.run_id, entry.done) == ("partial", "0123456789ab", "undelivered")


def test_a_run_object_of_12000_findings_is_well_under_1_mb() -> None:
    rng = random.Random(12)  # random ids, as real ones are: they compress far less than uuid_for's

    def some_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    findings = {some_id(): BELOW + NO_HIB for _ in range(12_000)}
    data = encode(record("aaaaaaaaaaaa", T0, findings=findings, unchecked={some_id(): "deadline" for _ in range(1000)}))
    assert len(data) < 512 * 1024  # about 25 bytes a finding
    assert decode(data).findings == findings
    assert encode(decode(data)) == data  # the same record, the same bytes


# The baseline and who announces -------------------------------------------------------------------------------


def test_the_baseline_is_the_last_complete_sweep_and_what_came_after_it() -> None:
    store = Memory()
    history = History(store, PREFIX, PROJECT)
    save(store, record("000000000001", T0, findings={uuid_for(1): BELOW}), T0)
    save(store, record("000000000002", T0 + timedelta(days=1), findings={uuid_for(2): BELOW}), T0 + timedelta(days=1))
    event = record("000000000003", T0 + timedelta(days=1, hours=3), "event", findings={uuid_for(3): NO_HIB})
    event.compliant = [uuid_for(2)]  # re-imaged, and fixed
    save(store, event, T0 + timedelta(days=1, hours=3))
    partial = record("000000000004", T0 + timedelta(days=1, hours=4), "partial", findings={uuid_for(4): BELOW})
    save(store, partial, T0 + timedelta(days=1, hours=4))
    save(
        store,
        record("000000000005", T0 + timedelta(days=1, hours=5), "sweep", findings={}),
        T0 + timedelta(days=3),
        done=False,
    )
    now = T0 + timedelta(days=2)
    runs = history.list(now)
    baseline = history.baseline(runs, me_at(now), now)
    # The sweep that failed to deliver is no baseline; the one before it is, with the event and the partial after it.
    assert baseline.findings == {uuid_for(3): NO_HIB, uuid_for(4): BELOW}
    assert baseline.since == (T0 + timedelta(days=1)).isoformat()


def test_a_run_still_in_flight_counts_as_announcing_and_one_that_died_does_not() -> None:
    store = Memory()
    history = History(store, PREFIX, PROJECT)
    save(store, record("000000000001", T0, findings={}), T0)
    save(
        store,
        record("000000000002", T0 + timedelta(hours=1), "event", findings={uuid_for(1): BELOW}),
        T0 + timedelta(hours=1),
        done=None,
    )
    soon, late = T0 + timedelta(hours=1, minutes=5), T0 + timedelta(hours=2)
    assert history.baseline(history.list(soon), me_at(soon), soon).findings == {uuid_for(1): BELOW}
    assert history.baseline(history.list(late), me_at(late), late).findings == {}


def test_a_later_run_that_did_not_see_me_covers_its_desktops_and_one_that_did_does_not() -> None:
    store = Memory()
    history = History(store, PREFIX, PROJECT)
    me = me_at(T0)
    event = record("000000000002", T0 + timedelta(minutes=1), "event", findings={uuid_for(1): BELOW})
    save(store, event, T0 + timedelta(minutes=1), view=[])
    covered, deferred = history.covered_by_later(me, history.list(T0), lambda: history.list(T0), lambda: False)
    assert covered == {uuid_for(1)} and deferred == ["000000000002"]
    sweep = record("000000000003", T0 + timedelta(minutes=2), "sweep")
    save(store, sweep, T0 + timedelta(minutes=2), view=[])
    assert (
        history.covered_by_later(me, history.list(T0), lambda: history.list(T0), lambda: False)[0] is None
    )  # all of them
    store.objects.clear()
    save(store, sweep, T0 + timedelta(minutes=2), view=[me.run_id])
    assert history.covered_by_later(me, history.list(T0), lambda: history.list(T0), lambda: False) == (set(), [])


def test_a_later_run_still_deciding_is_waited_for_then_not_deferred_to() -> None:
    store = Memory()
    history = History(store, PREFIX, PROJECT)
    save(store, record("000000000002", T0 + timedelta(minutes=1), "sweep"), T0 + timedelta(minutes=1), done=None)
    waits = []

    def wait() -> bool:
        waits.append(1)
        return len(waits) < 3

    assert history.covered_by_later(me_at(T0), history.list(T0), lambda: history.list(T0), wait) == (set(), [])
    assert len(waits) == 3


@pytest.mark.parametrize("data", [b"not gzip", encode(record("000000000001", T0))[:-5]])
def test_an_unreadable_baseline_makes_the_run_report_in_full(data: bytes) -> None:
    store = Memory()
    history = History(store, PREFIX, PROJECT)
    entry = save(store, record("000000000001", T0, findings={uuid_for(1): BELOW}), T0)
    store.objects[entry.key] = data
    now = T0 + timedelta(hours=1)
    assert history.baseline(history.list(now), me_at(now), now) == Baseline(unreadable=True)
