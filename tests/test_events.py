"""Event parsing: every sample, the shapes CTS varies in, and what a trace yields."""

from __future__ import annotations

import json

import pytest

from conftest import EVENTS, load_event, uuid_for
from sysprep_guard.errors import EventError
from sysprep_guard.events import MAX_MANUAL_IDS, Check, Skip, Sweep, parse_event

JOB = "ff80808290a1b2c3d4e5f60718293a4b"


def trace(**fields: object) -> dict[str, object]:
    return {"cts": {"service_type": "Workspace", "trace_name": "createDesktop", "trace_status": "normal", **fields}}


def test_every_sample_parses() -> None:
    kinds = {p.name: parse_event(json.loads(p.read_text())).trigger for p in EVENTS.glob("*.json")}
    assert kinds == {
        "timer.json": "timer",
        "manual-sweep.json": "manual",
        "manual.json": "manual",
        "cts-resource-id.json": "cts",
        "cts-job.json": "cts",
        "eventgrid.json": "eventgrid",
    }


def test_timer_and_manual_sweep_sweep() -> None:
    assert parse_event(load_event("timer.json")).target == Sweep()
    assert parse_event({"sweep": True}).target == Sweep()


def test_cts_job_trace_yields_the_job_not_the_job_id_as_a_desktop() -> None:
    assert parse_event(load_event("cts-job.json")).target == Check(job_ids=(JOB,))


def test_resource_id_lists_are_split_and_merged_with_response_ids() -> None:
    target = parse_event(load_event("cts-resource-id.json")).target
    assert target == Check(desktop_ids=("3f2c1a4e-9b7d-4c2a-8e1f-0a1b2c3d4e01", "3f2c1a4e-9b7d-4c2a-8e1f-0a1b2c3d4e02"))


@pytest.mark.parametrize(
    "fields",
    [
        {"response": {"desktops": [{"desktop_id": uuid_for(1)}]}},
        {"response": json.dumps({"desktop_id": uuid_for(1)})},
        {"request": {"desktop_ids": [uuid_for(1)]}},
        {"resource_id": f" {uuid_for(1).upper()} "},
    ],
)
def test_desktop_ids_are_found_wherever_the_trace_puts_them(fields: dict[str, object]) -> None:
    assert parse_event(trace(**fields)).target == Check(desktop_ids=(uuid_for(1),))


def test_trace_fields_of_either_type_are_accepted() -> None:
    event = trace(resource_id=uuid_for(1), time="2026-11-28T01:00:00Z", code="201", response="not json")
    assert isinstance(parse_event(event).target, Check)
    event = trace(resource_id=uuid_for(1), time=1795845600000, code=201)
    assert isinstance(parse_event(event).target, Check)


def test_trace_names_are_matched_without_case() -> None:
    assert isinstance(parse_event(trace(trace_name="CreateDesktops", resource_id=uuid_for(1))).target, Check)


def test_skips_say_why() -> None:
    skip = parse_event(trace(trace_name="rebootDesktop")).target
    assert isinstance(skip, Skip) and "rebootDesktop" in skip.reason
    other = parse_event({"specversion": "1.0", "type": "OBS:Object:Created", "data": {}}).target
    assert isinstance(other, Skip)


def test_eventgrid_data_may_wrap_the_trace_in_cts() -> None:
    event = {"specversion": "1.0", "type": "WORKSPACE:CloudTrace:ConsoleAction", "data": trace(resource_id=uuid_for(2))}
    assert parse_event(event).target == Check(desktop_ids=(uuid_for(2),))


def test_manual_ids_are_deduplicated_and_capped() -> None:
    assert parse_event({"desktop_ids": [uuid_for(1), uuid_for(1)]}).target == Check(desktop_ids=(uuid_for(1),))
    with pytest.raises(EventError, match="at most"):
        parse_event({"desktop_ids": [uuid_for(n) for n in range(MAX_MANUAL_IDS + 1)]})


def test_unknown_fields_in_a_manual_event_are_refused() -> None:
    with pytest.raises(EventError, match="desktop_id"):
        parse_event({"desktop_ids": [uuid_for(1)], "desktop_id": uuid_for(2)})


def test_unrecognised_event_lists_what_is_expected() -> None:
    with pytest.raises(EventError) as err:
        parse_event({"Records": []})
    assert "TIMER" in str(err.value) and '{"sweep": true}' in str(err.value) and "Records" in str(err.value)


def test_a_resource_id_that_is_no_desktop_id_is_passed_over_when_the_trace_names_desktops_elsewhere(capsys) -> None:
    event = trace(resource_id="CS2026112800001", response={"desktop_id": uuid_for(3), "extra": {"desktop_id": ""}})
    assert parse_event(event).target == Check(desktop_ids=(uuid_for(3),))
    assert "CS2026112800001" in capsys.readouterr().out  # named in the log, so operators can tell


def test_desktop_ids_given_as_objects_are_found() -> None:
    event = trace(response={"desktop_ids": [{"desktop_id": uuid_for(4)}, {"desktop_id": uuid_for(5)}]})
    target = parse_event(event).target
    assert isinstance(target, Check) and sorted(target.desktop_ids) == [uuid_for(4), uuid_for(5)]


@pytest.mark.parametrize("code", ["500.0", 500.0, " 404 "])
def test_failure_codes_in_any_spelling_skip_the_trace(code: object) -> None:
    assert isinstance(parse_event(trace(resource_id=uuid_for(1), code=code)).target, Skip)
