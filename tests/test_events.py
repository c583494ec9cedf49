"""Event parsing: every sample, the shapes CTS varies in, and what each kind of trace yields."""

from __future__ import annotations

import json

import pytest

from conftest import EVENTS, load_event, uuid_for
from devkit.samples import desktop, job
from sysprep_guard.errors import EventError
from sysprep_guard.events import MAX_MANUAL_IDS, Check, Skip, Sweep, parse_event
from sysprep_guard.traces import TRACES

POOL = "6d1e0f2a-3b4c-4d5e-8f60-718293a4b5c6"


def trace(**fields: object) -> dict[str, object]:
    """A CTS trace as CTS documents it: code, request and response as strings."""
    return {
        "cts": {
            "service_type": "Workspace",
            "resource_type": "workspace",
            "trace_name": "createDesktops",
            "trace_rating": "normal",
            "code": "200",
            **fields,
        }
    }


# What each sample asks for. Every CTS trace name the function acts on has a sample.
SAMPLES = {
    "timer.json": ("timer", Sweep(weekday="saturday")),  # 2026-11-28T02:00:00+08:00, where the timer fired
    "estate-sweep.json": ("timer", Sweep(weekday="saturday")),  # every target of TARGETS (tests/test_estate.py)
    "manual-sweep.json": ("manual", Sweep()),
    "manual.json": ("manual", Check(desktop_ids=(desktop(3), desktop(4)))),
    "cts-create-desktops.json": ("cts", Check(job_ids=(job(1),))),
    "cts-create-desktop-order.json": ("cts", Check(job_ids=(job(2),))),
    "cts-create-order.json": ("cts", Check(job_ids=(job(3),))),
    "cts-create-desktop-pool.json": ("cts", Check(job_ids=(job(4),))),  # resource_id is the pool, not a desktop
    "cts-expand-desktop-pool.json": ("cts", Check(job_ids=(job(5),))),
    "cts-rebuild-desktops.json": ("cts", Check(desktop_ids=(desktop(1), desktop(4)), job_ids=(job(6),))),
    "cts-change-image-order.json": ("cts", Check(desktop_ids=(desktop(2),), job_ids=(job(7),))),
    "cts-resource-id.json": ("cts", Check(desktop_ids=(desktop(1), desktop(2)))),
    "eventgrid.json": ("eventgrid", Check(job_ids=(job(8),))),
}


def test_every_sample_parses_to_what_it_asks_for() -> None:
    assert {p.name for p in EVENTS.glob("*.json")} == set(SAMPLES)
    for name, (trigger, target) in SAMPLES.items():
        invocation = parse_event(load_event(name))
        assert (invocation.trigger, invocation.work) == (trigger, target), name


def test_every_trace_the_function_acts_on_has_a_real_shaped_sample() -> None:
    names = set()
    for path in EVENTS.glob("cts-*.json"):
        cts = json.loads(path.read_text())["cts"]
        # The shape CTS documents: string code, request and response; a rating, not a status; Workspace's names.
        assert (cts["service_type"], cts["resource_type"], cts["trace_rating"]) == ("Workspace", "workspace", "normal")
        assert all(isinstance(cts[k], str) for k in ("code", "request", "response", "resource_id"))
        assert "trace_status" not in cts
        names.add(cts["trace_name"])
    wanted = {"createDesktops", "CreateDesktopOrder", "createOrder", "createDesktopPool", "expandDesktopPool"}
    assert wanted | {"batchRebuildDesktops", "createBatchChangeOrder"} <= names <= {t.name for t in TRACES}


@pytest.mark.parametrize(
    "fields",
    [
        {"response": json.dumps({"desktops": [{"desktop_id": uuid_for(1)}]})},
        {"response": json.dumps({"desktop_id": uuid_for(1)})},
        {"response": {"desktop_id": uuid_for(1)}},  # older samples: an object
        {"request": json.dumps({"desktop_ids": [uuid_for(1)]})},
        {"resource_id": f" {uuid_for(1).upper()} "},
        {"resource_id": {"id": uuid_for(1)}},  # older samples: resource_id as an object
    ],
)
def test_desktop_ids_are_found_wherever_the_trace_puts_them(fields: dict[str, object]) -> None:
    assert parse_event(trace(**fields)).work == Check(desktop_ids=(uuid_for(1),))


def test_trace_fields_of_either_type_are_accepted() -> None:
    event = trace(resource_id=uuid_for(1), time="2026-11-28T01:00:00Z", code="201", response="not json")
    assert isinstance(parse_event(event).work, Check)
    event = trace(resource_id=uuid_for(1), time=1795845600000, code=201)
    assert isinstance(parse_event(event).work, Check)


def test_trace_names_are_matched_without_case() -> None:
    assert isinstance(parse_event(trace(trace_name="CREATEDESKTOPS", resource_id=uuid_for(1))).work, Check)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"trace_name": "rebootDesktop"}, "neither creates nor re-images"),
        ({"trace_name": "createDesktop"}, "neither creates nor re-images"),  # not a Workspace trace name
        ({"trace_name": "createChangeOrder"}, "neither creates nor re-images"),  # resize or disks, never an image
        ({"service_type": "ECS"}, "not Workspace"),
        ({"trace_rating": "warning"}, "rated 'warning'"),
        ({"trace_rating": "incident"}, "rated 'incident'"),
        ({"trace_rating": None, "trace_status": "error"}, "rated 'error'"),  # older samples' field
        ({"code": "500.0"}, "code 500"),
        ({"trace_name": "createOrder", "request": json.dumps({"type": "addVolumes"})}, "'addVolumes'"),
        ({"trace_name": "createBatchChangeOrder", "request": json.dumps({"type": "RESIZE"})}, "'RESIZE'"),
    ],
)
def test_traces_that_change_no_image_are_skipped_saying_why(fields: dict[str, object], why: str) -> None:
    skip = parse_event(trace(resource_id=uuid_for(1), response=json.dumps({"job_id": job(1)}), **fields)).work
    assert isinstance(skip, Skip) and why in skip.reason


def test_an_order_whose_type_was_not_recorded_is_checked_all_the_same() -> None:
    event = trace(trace_name="createOrder", request="", response=json.dumps({"order_id": "CS1", "job_id": job(3)}))
    assert parse_event(event).work == Check(job_ids=(job(3),))


def test_a_pool_operation_never_takes_the_pool_id_for_a_desktop() -> None:
    for name in ("createDesktopPool", "expandDesktopPool", "rebuildDesktopPool"):
        event = trace(trace_name=name, resource_id=POOL, response=json.dumps({"job_id": job(4)}))
        assert parse_event(event).work == Check(job_ids=(job(4),)), name


def test_a_trace_naming_nothing_is_skipped_not_failed(capsys: pytest.CaptureFixture[str]) -> None:
    skip = parse_event(trace(resource_id="CS2611280100ABCDE", response="")).work
    assert isinstance(skip, Skip) and "names no desktop and no job" in skip.reason and "next sweep" in skip.reason


def test_a_desktop_id_with_a_trailing_newline_is_no_desktop_id() -> None:
    target = parse_event(trace(resource_id=f"{uuid_for(1)}\n,{uuid_for(2)}")).work
    assert target == Check(desktop_ids=(uuid_for(1), uuid_for(2)))  # stripped, so counted once each
    with pytest.raises(EventError, match="not a Workspace desktop id"):
        parse_event({"desktop_ids": [f"{uuid_for(1)}\n"]})


def test_a_job_id_that_could_change_the_path_is_passed_over(capsys: pytest.CaptureFixture[str]) -> None:
    event = trace(response=json.dumps({"job_id": "a/../b?x=1"}), resource_id=uuid_for(1))
    assert parse_event(event).work == Check(desktop_ids=(uuid_for(1),))
    assert "a/../b?x=1" in capsys.readouterr().out


def test_eventgrid_accepts_either_case_and_a_wrapped_trace() -> None:
    for kind in ("Workspace:CloudTrace:ApiCall", "WORKSPACE:CloudTrace:ConsoleAction"):
        event = {"specversion": "1.0", "source": "HC.Workspace", "type": kind, "data": trace(resource_id=uuid_for(2))}
        assert parse_event(event).work == Check(desktop_ids=(uuid_for(2),))
    data = json.dumps(trace(resource_id=uuid_for(2))["cts"])
    event = {"specversion": "1.0", "source": "HC.WORKSPACE", "type": "WORKSPACE:CloudTrace:ApiCall", "data": data}
    assert parse_event(event).work == Check(desktop_ids=(uuid_for(2),))
    other = parse_event({"specversion": "1.0", "type": "OBS:Object:Created", "data": {}}).work
    assert isinstance(other, Skip)


@pytest.mark.parametrize(
    ("time", "weekday"),
    [("2026-11-30T01:00:00+08:00", "monday"), ("2026-11-29T17:00:00Z", "sunday"), (1795845600000, None), ("x", None)],
)
def test_a_timer_says_which_day_it_fired_where_it_fired(time: object, weekday: str | None) -> None:
    assert parse_event({"trigger_type": "TIMER", "time": time}).work == Sweep(weekday=weekday)


def test_a_manual_sweep_can_ask_for_the_full_report() -> None:
    assert parse_event({"sweep": True, "full_report": True}).work == Sweep(full_report=True)


def test_a_sweep_can_name_one_target_and_a_fanned_out_sweep_says_which_and_how_it_started() -> None:
    assert parse_event({"sweep": True, "target": "finance"}).work == Sweep(target="finance")
    dispatched = {"target_sweep": {"target": "cn-north-4/0a1b", "trigger": "timer", "weekday": "monday"}}
    invocation = parse_event(dispatched)
    assert (invocation.trigger, invocation.work) == ("timer", Sweep(target="cn-north-4/0a1b", weekday="monday"))
    with pytest.raises(EventError, match='"target" goes with "sweep": true'):
        parse_event({"desktop_ids": [uuid_for(1)], "target": "finance"})
    with pytest.raises(EventError, match=r"malformed target event: target_sweep\.trigger"):
        parse_event({"target_sweep": {"target": "x", "trigger": "cts"}})  # only a sweep fans out


def test_manual_ids_are_deduplicated_and_capped() -> None:
    assert parse_event({"desktop_ids": [uuid_for(1), uuid_for(1)]}).work == Check(desktop_ids=(uuid_for(1),))
    with pytest.raises(EventError, match="at most"):
        parse_event({"desktop_ids": [uuid_for(n) for n in range(MAX_MANUAL_IDS + 1)]})


def test_unknown_fields_in_a_manual_event_are_refused() -> None:
    with pytest.raises(EventError, match="desktop_id"):
        parse_event({"desktop_ids": [uuid_for(1)], "desktop_id": uuid_for(2)})


def test_unrecognised_event_lists_what_is_expected() -> None:
    with pytest.raises(EventError) as err:
        parse_event({"Records": []})
    assert "TIMER" in str(err.value) and '{"sweep": true}' in str(err.value) and "Records" in str(err.value)


def test_a_value_that_is_no_desktop_id_is_passed_over_and_named(capsys: pytest.CaptureFixture[str]) -> None:
    event = trace(
        resource_id="CS2026112800001", response=json.dumps({"desktop_id": uuid_for(3), "x": {"desktop_id": ""}})
    )
    assert parse_event(event).work == Check(desktop_ids=(uuid_for(3),))
    assert "CS2026112800001" in capsys.readouterr().out  # named in the log, so operators can tell


def test_desktop_ids_given_as_objects_are_found() -> None:
    event = trace(response=json.dumps({"desktop_ids": [{"desktop_id": uuid_for(4)}, {"desktop_id": uuid_for(5)}]}))
    target = parse_event(event).work
    assert isinstance(target, Check) and sorted(target.desktop_ids) == [uuid_for(4), uuid_for(5)]


def test_change_order_jobs_are_found_in_the_orders_list() -> None:
    response = json.dumps({"orders": [{"order_id": "CS1", "job_id": job(7)}, {"order_id": "CS2", "job_id": job(9)}]})
    event = trace(
        trace_name="createDesktopPoolChangeOrder", request=json.dumps({"type": "CHANGE_IMAGE"}), response=response
    )
    assert parse_event(event).work == Check(job_ids=(job(7), job(9)))
