"""Fleet scale: the fewest calls, bounded concurrency that backs off when throttled, dead keys cost one call."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import responses

from conftest import PROJECT, WORKSPACE, Fleet, load_event
from sysprep_guard.client import Throttle

SYSPREP = f"{WORKSPACE}/v2/{PROJECT}/sysprep"


def test_a_sweep_makes_the_minimum_of_calls(invoke, fleet: Fleet) -> None:
    fleet.add(4321)
    summary = invoke(load_event("timer.json"))
    assert len(fleet.list_calls) == 5  # ceil(4321 / 1000)
    assert len(fleet.sysprep_calls) == 44  # ceil(4321 / 100)
    assert sorted(d for call in fleet.sysprep_calls for d in call) == sorted(fleet.desktops)
    assert summary["checked"] == 4321


def test_an_event_makes_no_list_call(invoke, fleet: Fleet) -> None:
    ids = fleet.add(250)
    invoke({"desktop_ids": ids})
    assert fleet.list_calls == [] and len(fleet.sysprep_calls) == 3


def test_sysprep_batches_run_concurrently_up_to_the_bound(invoke, cloud, fleet: Fleet) -> None:
    ids = fleet.add(1300)  # one batch alone, then three rounds of four
    # Four calls can only all pass this barrier if four are in flight at once.
    barrier = threading.Barrier(4, timeout=10)
    lock, state = threading.Lock(), {"now": 0, "peak": 0}

    def gated(request: Any) -> tuple[int, dict[str, str], str]:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        if len(fleet.sysprep_calls) >= 1:  # the first call goes alone: it must not wait for company
            barrier.wait()
        try:
            return fleet._sysprep(request)
        finally:
            with lock:
                state["now"] -= 1

    cloud.remove(responses.POST, SYSPREP)
    cloud.add_callback(responses.POST, SYSPREP, gated)
    summary = invoke({"desktop_ids": ids}, MAX_CONCURRENCY="4")
    assert summary["checked"] == 1300
    assert state["peak"] == 4


def test_a_dead_key_is_not_fired_in_parallel(invoke, cloud, fleet: Fleet) -> None:
    ids = fleet.add(1000)
    cloud.remove(responses.POST, SYSPREP)
    cloud.add(responses.POST, SYSPREP, status=403, json={"error_code": "WKS.0403", "error_msg": "denied"})
    summary = invoke({"desktop_ids": ids}, MAX_CONCURRENCY="16")
    assert len([c for c in cloud.calls if c.request.url == SYSPREP]) == 1
    assert len(summary["unchecked"]) == 1000


def test_throttling_halves_the_calls_in_flight_and_successes_grow_them_back() -> None:
    throttle = Throttle(8)
    assert throttle.acquire(1)
    throttle.release(throttled=True)
    assert throttle.limit == 4
    assert throttle.acquire(1)
    throttle.release(throttled=True)
    assert throttle.limit == 2
    for _ in range(2):
        assert throttle.acquire(1)
        throttle.release(throttled=False)
    assert throttle.limit == 3
    for _ in range(100):
        assert throttle.acquire(1)
        throttle.release(throttled=False)
    assert throttle.limit == 8


def test_a_full_throttle_makes_callers_wait(invoke) -> None:
    throttle = Throttle(1)
    assert throttle.acquire(1)
    assert throttle.acquire(0.01) is False
    throttle.release(throttled=False)
    assert throttle.acquire(0.01) is True


def test_throttled_sweeps_still_account_for_every_desktop(invoke, cloud, fleet: Fleet) -> None:
    fleet.add(800)
    answers = iter([429, 429, 200] * 1000)

    def sometimes_throttled(request: Any) -> tuple[int, dict[str, str], str]:
        if next(answers) == 429:
            body = {"error_code": "APIG.0308", "error_msg": "The throttling threshold has been reached"}
            return 429, {}, json.dumps(body)
        return fleet._sysprep(request)

    cloud.remove(responses.POST, SYSPREP)
    cloud.add_callback(responses.POST, SYSPREP, sometimes_throttled)
    summary = invoke(load_event("timer.json"))
    assert summary["checked"] + len(summary["unchecked"]) == 800


def test_a_fleet_that_grows_during_a_sweep_is_listed_to_the_end_each_desktop_once(invoke, cloud, fleet: Fleet) -> None:
    ids = fleet.add(2000)
    # Five desktops were created (listed first) after the first page was read: the second page starts with the
    # first page's last five, and the count grew, so a third page holds the last five of the first count.
    pages = {"0": (ids[:1000], 2000), "1000": (ids[995:1995], 2005), "2000": (ids[1995:], 2005)}

    def shifting(request: Any) -> tuple[int, dict[str, str], str]:
        ids, total = pages[request.url.split("offset=")[1].split("&")[0]]
        desktops = [{"desktop_id": d, "status": "ACTIVE"} for d in ids]
        return 200, {}, json.dumps({"total_count": total, "desktops": desktops})

    listing = f"{WORKSPACE}/v2/{PROJECT}/desktops"
    cloud.remove(responses.GET, cloud.registered()[0].url)
    cloud.add_callback(responses.GET, re.compile(listing + r"\?.*"), shifting)
    summary = invoke(load_event("timer.json"))
    assert summary["checked"] == 2000
    assert sorted(d for call in fleet.sysprep_calls for d in call) == sorted(ids)
    assert len([c for c in cloud.calls if "/desktops?" in c.request.url]) == 3  # three pages, no more
    # The five created meanwhile were never listed (their creation triggers check them): said, not hidden.
    assert summary["incomplete"] is True and summary["unlisted"] == 5


def test_a_listing_without_a_count_is_paged_until_a_short_page(invoke, cloud, fleet: Fleet) -> None:
    ids = fleet.add(2500)

    def uncounted(request: Any) -> tuple[int, dict[str, str], str]:
        offset = int(request.url.split("offset=")[1].split("&")[0])
        desktops = [{"desktop_id": d} for d in ids[offset : offset + 1000]]
        return 200, {}, json.dumps({"desktops": desktops})

    cloud.remove(responses.GET, cloud.registered()[0].url)
    cloud.add_callback(responses.GET, re.compile(f"{WORKSPACE}/v2/{PROJECT}/desktops" + r"\?.*"), uncounted)
    summary = invoke(load_event("timer.json"))
    assert summary["checked"] == 2500
    assert len([c for c in cloud.calls if "/desktops?" in c.request.url]) == 3
    # ListDesktops documents total_count: without one the sweep cannot be checked for completeness, and says so.
    assert summary["incomplete"] is True and summary["unlisted"] is None and "no total_count" in summary["errors"][0]
