"""The run history end to end, on the emulator over real sockets: alerts on change, full reports, overlapping runs,
an incomplete sweep, OBS out of reach, a week of nightly sweeps, and the Cloud Eye metrics."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest

import index
from conftest import FakeClock
from devkit.context import Context
from devkit.emulator import FAKE_AK, FAKE_SK, FAKE_TOKEN, Emulator, Fault, Fleet, Published, Sysprep
from devkit.emulator.obs import outage
from sysprep_guard import obs_store
from sysprep_guard.errors import DeliveryError

WHERE = "(ap-southeast-1, project 0123456789abcdef0123456789abcdef)"  # every subject says where
BUCKET = "sysprep-state"
Run = Callable[..., dict[str, Any]]
GOOD = Sysprep(version="3.1.2")


def timer(day: date) -> dict[str, Any]:
    """A nightly timer event that fired at 02:00 on `day`, in UTC+8."""
    return {"version": "v1.0", "time": f"{day.isoformat()}T02:00:00+08:00", "trigger_type": "TIMER"}


MONDAY = date(2026, 11, 30)
SUNDAY = MONDAY - timedelta(days=1)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    fleet = Fleet.seeded(60, seed=21, per_kind=0)  # all compliant: each test makes its own findings
    with Emulator(fleet=fleet, buckets=[BUCKET], ces=True) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def run(emu: Emulator, clock: FakeClock) -> Run:
    def invoke(event: Any, **settings: str) -> dict[str, Any]:
        user_data = emu.settings(
            **{"MIN_SYSPREP_VERSION": "3.0.10", "REQUIRE_HIBERNATE": "true", "STATE_BUCKET": BUCKET, **settings}
        )
        index._services = None  # a cold start each time: the settings may differ from run to run
        context = Context(user_data, access_key=FAKE_AK, secret_key=FAKE_SK, security_token=FAKE_TOKEN, now=clock.now)
        return index.handler(event, context)

    return invoke


def published_since(emu: Emulator, start: int) -> list[Published]:
    return emu.published[start:]


def subjects(messages: list[Published]) -> list[str]:
    return [m.subject for m in messages]


def runs_in(emu: Emulator) -> list[dict[str, Any]]:
    """The run objects in the bucket, oldest first."""
    objects = emu.buckets[BUCKET]
    keys = sorted(k for k in objects if k.endswith(".json.gz"))
    return [json.loads(gzip.decompress(objects[k].data)) for k in keys]


def lines(message: Published) -> list[str]:
    return (message.message or "").splitlines()


# Alerts on change ---------------------------------------------------------------------------------------------


def test_a_second_sweep_publishes_only_what_changed_and_a_third_nothing(run: Run, emu: Emulator) -> None:
    fleet = emu.fleet
    fixed = fleet.add(Sysprep(version="3.0.1"), computer_name="fix-me")
    changed = fleet.add(Sysprep(hibernate=False), computer_name="changes")
    gone = fleet.add(Sysprep(version="2.0"), computer_name="goes-away")
    stays = fleet.add(Sysprep(version="3.0.2"), computer_name="stays")
    first = run(timer(SUNDAY))
    assert first["notified"].startswith("full: no complete sweep to compare with yet")
    assert subjects(emu.published) == [f"Sysprep: 4 of 64 desktops non-compliant {WHERE}"]

    new = fleet.ids()[7]
    fleet.update(new, sysprep=Sysprep(version="3.0.9"))
    fleet.update(fixed, sysprep=GOOD)
    fleet.update(changed, sysprep=Sysprep(version="1.0"))
    fleet.remove(gone)
    second = run(timer(SUNDAY + timedelta(days=2)))  # a Tuesday: no full report

    assert second["notified"] == "changes: what changed since the last complete sweep"
    assert second["changes"] == {
        "new": 1, "changed": 1, "fixed": 1, "gone": 1, "exempt": 0, "still_non_compliant": 1, "still_unchecked": 0,
        "newly_unchecked": 0,
    }  # fmt: skip
    (alert,) = published_since(emu, 1)
    assert alert.subject == (
        f"Sysprep changes: 1 desktop newly non-compliant, 1 non-compliant for other reasons, 1 fixed, 1 gone {WHERE}"
    )
    text = lines(alert)
    assert any(
        line.startswith(f"- {new} (desk-000008") and line.endswith("sysprep_version_below_minimum") for line in text
    )
    before = "(before: hibernate_not_supported)"
    assert f"- {changed} (changes, user added0002) version 1.0: sysprep_version_below_minimum {before}" in text
    assert f"- {fixed}: fixed (was: sysprep_version_below_minimum)" in text
    assert f"- {gone}: gone (was: sysprep_version_below_minimum)" in text
    assert stays not in (alert.message or "")  # still non-compliant, counted, not listed
    attributes = {a["name"]: a["value"] for a in alert.body["message_attributes"]}
    assert (attributes["report"], attributes["severity"], attributes["fingerprint"]) == (
        "changes",
        "non_compliant",
        second["fingerprint"],
    )

    third = run(timer(SUNDAY + timedelta(days=3)))
    assert third["notified"].startswith("nothing") and third["published"] == [] and len(emu.published) == 2
    assert [r["kind"] for r in runs_in(emu)] == ["sweep", "sweep", "sweep"]  # every run recorded, nothing lost


def test_full_reports_still_go_out_weekly_and_on_demand(run: Run, emu: Emulator) -> None:
    emu.fleet.add(Sysprep(version="3.0.1"))
    run(timer(SUNDAY))
    emu.fleet.add(Sysprep(version="3.0.2"))
    monday = run(timer(MONDAY))
    assert monday["notified"].startswith("full+changes") and len(emu.published) == 3  # the change, and the full
    assert subjects(published_since(emu, 1)) == [
        f"Sysprep changes: 1 desktop newly non-compliant {WHERE}",
        f"Sysprep: 2 of 62 desktops non-compliant {WHERE}",
    ]
    asked = run({"sweep": True, "full_report": True})
    assert asked["notified"].startswith("full:") and subjects(published_since(emu, 3)) == [
        f"Sysprep: 2 of 62 desktops non-compliant {WHERE}"
    ]
    never = run(timer(MONDAY + timedelta(days=7)), FULL_REPORT_DAY="never")
    assert never["notified"].startswith("nothing") and len(emu.published) == 4


def test_a_week_of_nightly_sweeps_gives_seven_change_alerts_and_one_full_report(run: Run, emu: Emulator) -> None:
    """Three changes a night for a week (Monday to Sunday) after a first sweep: a small alert each night, and the
    full report on Monday only, not seven full reports."""
    run(timer(SUNDAY))  # the first: nothing to compare with, the full report
    first = len(emu.published)
    compliant = iter(emu.fleet.ids())
    for night in range(7):
        for _ in range(3):
            emu.fleet.update(next(compliant), sysprep=Sysprep(version="3.0.0"))
        run(timer(MONDAY + timedelta(days=night)))
    week = published_since(emu, first)
    changes = [m for m in week if m.subject.startswith("Sysprep changes: 3 desktops newly non-compliant")]
    full = [m for m in week if m.subject.startswith("Sysprep: ")]
    assert (len(changes), len(full)) == (7, 1) and len(week) == 8
    assert all(len(lines(m)) < 30 for m in changes)  # small: three desktops each


def test_an_event_announces_its_findings_and_the_next_sweep_does_not_again(run: Run, emu: Emulator) -> None:
    run(timer(SUNDAY))
    made = emu.fleet.add(Sysprep(hibernate=False), computer_name="new-desk")
    event = run({"desktop_ids": [made]})
    assert event["notified"] == "full: an event's findings are always new" and len(emu.published) == 1
    sweep = run(timer(SUNDAY + timedelta(days=2)))
    assert sweep["notified"].startswith("nothing") and len(emu.published) == 1
    assert [r["kind"] for r in runs_in(emu)] == ["sweep", "event", "sweep"]


def test_an_incomplete_sweep_never_calls_an_unlisted_desktop_fixed_or_gone(run: Run, emu: Emulator) -> None:
    emu.fleet = Fleet.seeded(1_100, seed=5, per_kind=0)
    late = [emu.fleet.ids()[n] for n in (1_050, 1_060)]  # on the second page
    for desktop_id in late:
        emu.fleet.update(desktop_id, sysprep=Sysprep(version="3.0.1"))
    run(timer(SUNDAY))
    early = emu.fleet.ids()[5]
    emu.fleet.update(early, sysprep=Sysprep(version="3.0.1"))
    emu.inject("list", Fault.server_error(), times=50, query={"offset": "1000"})  # that page, every try
    partial = run(timer(SUNDAY + timedelta(days=2)))
    assert partial["incomplete"] is True and partial["unlisted"] == 100
    assert partial["changes"]["new"] == 1 and partial["changes"]["gone"] == 0 and partial["changes"]["fixed"] == 0
    (alert,) = published_since(emu, 1)
    assert "INCOMPLETE" in (alert.message or "") and all(d not in (alert.message or "") for d in late)
    emu.clear_faults()
    whole = run(timer(SUNDAY + timedelta(days=3)))  # complete again: the late ones are still there, unchanged
    assert whole["incomplete"] is False and whole["notified"].startswith("nothing")


def test_a_changed_policy_sends_the_full_report_not_a_flood_of_changes(run: Run, emu: Emulator) -> None:
    emu.fleet.add(Sysprep(version="3.0.1"))
    run(timer(SUNDAY))
    stricter = run(timer(SUNDAY + timedelta(days=2)), MIN_SYSPREP_VERSION="3.2")  # two thirds of the fleet fall short
    assert stricter["notified"] == "full: the policy changed since the last complete sweep"
    assert subjects(published_since(emu, 1)) == [f"Sysprep: 41 of 61 desktops non-compliant {WHERE}"]
    again = run(timer(SUNDAY + timedelta(days=3)), MIN_SYSPREP_VERSION="3.2")  # compared under the same policy
    assert again["notified"].startswith("nothing")


def test_a_change_whose_alert_was_not_delivered_is_announced_by_the_next_sweep(run: Run, emu: Emulator) -> None:
    run(timer(SUNDAY))
    new = emu.fleet.add(Sysprep(version="3.0.1"))
    emu.inject("publish", Fault.server_error(), times=20)  # every try of this invocation
    with pytest.raises(DeliveryError):
        run(timer(SUNDAY + timedelta(days=2)))
    emu.clear_faults()
    retried = run(timer(SUNDAY + timedelta(days=2)))  # the platform's retry, or the next night
    assert retried["changes"]["new"] == 1 and new in (emu.published[-1].message or "")
    assert [e.split(".done.")[1] for e in sorted(emu.buckets[BUCKET]) if ".done." in e] == [
        "delivered.json", "undelivered.json", "delivered.json"
    ]  # fmt: skip


# OBS out of reach ---------------------------------------------------------------------------------------------


def test_obs_out_of_reach_costs_the_history_not_the_report(run: Run, emu: Emulator) -> None:
    first_finding = emu.fleet.add(Sysprep(version="3.0.1"))
    run(timer(SUNDAY))
    second_finding = emu.fleet.add(Sysprep(version="3.0.2"))
    emu.inject("obs_put", outage(), times=5)
    blind = run(timer(SUNDAY + timedelta(days=2)))
    assert blind["state"].startswith("not saved: obs PutObject failed, HTTP 503")
    assert blind["notified"].startswith("full: the history in OBS is out of reach")
    assert subjects(published_since(emu, 1)) == [f"Sysprep: 2 of 62 desktops non-compliant {WHERE}"]
    emu.clear_faults()
    # The next run compares with the last state it can read: the first sweep's, so the second finding is new.
    after = run(timer(SUNDAY + timedelta(days=3)))
    assert after["notified"].startswith("changes") and after["changes"]["new"] == 1
    assert second_finding in (emu.published[-1].message or "") and first_finding not in (
        emu.published[-1].message or ""
    )


# Overlapping runs ---------------------------------------------------------------------------------------------


def overlap(monkeypatch: pytest.MonkeyPatch, other: Callable[[], Any], before_write: bool) -> dict[str, Any]:
    """Run `other` (another invocation, on its own thread) while the next run saves its object: just before, or
    just after, it is written."""
    real_put = obs_store.ObsStore.put
    result: dict[str, Any] = {}
    fired = []

    def put(self: obs_store.ObsStore, key: str, data: bytes) -> None:
        if fired or not key.endswith(".json.gz"):
            return real_put(self, key, data)
        fired.append(key)
        if not before_write:
            real_put(self, key, data)
        thread = threading.Thread(target=lambda: result.update(other=other()))
        thread.start()
        thread.join(timeout=30)
        if before_write:
            real_put(self, key, data)
        return None

    monkeypatch.setattr(obs_store.ObsStore, "put", put)
    return result


@pytest.mark.parametrize("before_write", [True, False], ids=["later-run-first", "earlier-run-written-first"])
def test_two_overlapping_sweeps_announce_each_change_once(
    run: Run, emu: Emulator, monkeypatch: pytest.MonkeyPatch, before_write: bool
) -> None:
    run(timer(SUNDAY))
    new = emu.fleet.add(Sysprep(version="3.0.1"))
    result = overlap(monkeypatch, lambda: run({"sweep": True}), before_write)
    earlier = run(timer(SUNDAY + timedelta(days=2)))
    later = result["other"]
    alerts = [m for m in emu.published if new in (m.message or "")]
    assert len(alerts) == 1, (earlier["notified"], later["notified"])
    assert sorted([len(earlier["published"]), len(later["published"])]) == [0, 1]


@pytest.mark.parametrize("before_write", [True, False], ids=["event-before-the-sweep-writes", "event-after"])
def test_a_creation_event_during_a_sweep_is_announced_once(
    run: Run, emu: Emulator, monkeypatch: pytest.MonkeyPatch, before_write: bool
) -> None:
    run(timer(SUNDAY))
    made = emu.fleet.add(Sysprep(hibernate=False), computer_name="made-meanwhile")
    overlap(monkeypatch, lambda: run({"desktop_ids": [made]}), before_write)
    run(timer(SUNDAY + timedelta(days=2)))
    assert len([m for m in emu.published if made in (m.message or "")]) == 1
    # And the next sweep announces it no more.
    monkeypatch.undo()
    run(timer(SUNDAY + timedelta(days=3)))
    assert len([m for m in emu.published if made in (m.message or "")]) == 1


# NOTIFY=all and metrics ---------------------------------------------------------------------------------------


def test_notify_all_reports_in_full_every_time_and_still_records(run: Run, emu: Emulator) -> None:
    emu.fleet.add(Sysprep(version="3.0.1"))
    for day in (SUNDAY, MONDAY + timedelta(days=1)):
        summary = run(timer(day), NOTIFY="all")
        assert summary["notified"] == "full: NOTIFY=all"
    assert len(emu.published) == 2 and len(runs_in(emu)) == 2


def test_metrics_put_each_runs_counts_in_cloud_eye(run: Run, emu: Emulator) -> None:
    emu.fleet.add(Sysprep(version="3.0.1"))
    summary = run(timer(SUNDAY), METRICS="true")
    assert summary["metrics"] == "sent"
    points = {p.metric_name: p for p in emu.metrics}
    assert {name: points[name].value for name in points} == {
        "checked": 61, "compliant": 60, "non_compliant": 1, "unchecked": 0, "incomplete": 0
    }  # fmt: skip
    assert {p.namespace for p in emu.metrics} == {"WorkspaceSysprep.compliance"}


def test_a_metrics_failure_never_fails_the_run(run: Run, emu: Emulator) -> None:
    emu.fleet.add(Sysprep(version="3.0.1"))
    emu.inject("ces", Fault.server_error(), times=10)
    summary = run(timer(SUNDAY), METRICS="true", STATE_BUCKET="")
    assert summary["metrics"].startswith("not sent: ces CreateMetricData failed, HTTP 500")
    assert summary["published"] and summary["state"] == "off"
