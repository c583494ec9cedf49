"""Nothing lost: every desktop ends compliant, non-compliant or unchecked, whatever the cloud does."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from conftest import PROJECT, WORKSPACE, Fleet, accounted, load_event
from sysprep_guard.errors import DeliveryError

SYSPREP = f"{WORKSPACE}/v2/{PROJECT}/sysprep"


def test_a_missing_permission_costs_one_refused_call_and_every_desktop_is_reported(invoke, cloud, fleet: Fleet) -> None:
    ids = fleet.add(1000)
    cloud.remove(responses.POST, SYSPREP)
    cloud.add(
        responses.POST,
        SYSPREP,
        status=403,
        json={"error_code": "WKS.0403", "error_msg": "Policy doesn't allow workspace:desktops:getSysPrepInfo"},
    )
    summary = invoke({"desktop_ids": ids})
    sysprep_calls = [c for c in cloud.calls if c.request.url == SYSPREP]
    assert len(sysprep_calls) == 1
    assert summary["checked"] == 0 and len(summary["unchecked"]) == 1000
    assert {u["reason"] for u in summary["unchecked"]} == {
        "WKS.0403: Policy doesn't allow workspace:desktops:getSysPrepInfo"
    }
    assert "agency" in summary["errors"][0]
    assert summary["published"]  # the operator hears of it


def test_a_fleet_wide_refusal_keeps_the_summary_small(invoke, cloud, fleet: Fleet) -> None:
    """100,000 desktops left unchecked: the summary lists the 1,000 smallest ids and counts the rest by reason,
    so that what the handler returns stays far below FunctionGraph's 6 MB."""
    ids = fleet.add(100_000)
    cloud.remove(responses.POST, SYSPREP)
    cloud.add(responses.POST, SYSPREP, status=403, json={"error_code": "WKS.0403", "error_msg": "denied"})
    summary = invoke(load_event("timer.json"))
    assert summary["counts"]["unchecked"] == 100_000 and summary["counts"]["unchecked_by_reason"] == {
        "WKS.0403": 100_000
    }
    assert [u["desktop_id"] for u in summary["unchecked"]] == sorted(ids)[:1000]
    assert len(json.dumps(summary)) < 300_000
    assert len(fleet.published) <= 5  # a few messages, listing 1,000 and counting the rest


def test_a_batch_that_keeps_failing_is_unchecked_and_the_others_are_judged(invoke, cloud, fleet: Fleet) -> None:
    ids = fleet.add(300)
    calls = {"n": 0}

    def flaky(request: Any) -> tuple[int, dict[str, str], str]:
        calls["n"] += 1
        if ids[100] in json.loads(request.body)["desktop_ids"]:
            return 503, {"X-Request-Id": "r503"}, json.dumps({"error_code": "WKS.0500", "error_msg": "busy"})
        return fleet._sysprep(request)

    cloud.remove(responses.POST, SYSPREP)
    cloud.add_callback(responses.POST, SYSPREP, flaky)
    summary = invoke({"desktop_ids": ids})
    assert summary["checked"] == 200 and accounted(summary) == 300
    assert {u["reason"] for u in summary["unchecked"]} == {"WKS.0500: busy"}
    assert {u["desktop_id"] for u in summary["unchecked"]} == set(ids[100:200])
    assert calls["n"] == 2 + 4  # the failing batch was tried four times


def test_a_malformed_answer_is_never_taken_as_compliant(invoke, cloud, fleet: Fleet) -> None:
    ids = fleet.add(5)
    cloud.remove(responses.POST, SYSPREP)
    cloud.add(responses.POST, SYSPREP, json={"infos": []})
    summary = invoke({"desktop_ids": ids})
    assert summary["compliant"] == 0 and len(summary["unchecked"]) == 5
    assert "documented shape" in summary["unchecked"][0]["reason"]


def test_running_out_of_time_publishes_what_is_known_and_counts_the_rest(invoke, fleet: Fleet) -> None:
    fleet.add(5000, version="1.0")
    fleet.seconds_per_call = 3.0
    summary = invoke(load_event("timer.json"), timeout=60, MAX_CONCURRENCY="1")  # the fake clock is sequential
    assert summary["incomplete"] is True
    assert summary["unlisted"] > 0
    assert accounted(summary) + summary["unlisted"] == 5000
    assert any(u["reason"] == "deadline" for u in summary["unchecked"])
    assert summary["published"] and len(fleet.published) >= 1
    assert fleet.clock.t - 1000 <= 60  # never past the platform's timeout
    assert "INCOMPLETE" in fleet.texts[0]


def test_a_sweep_whose_listing_fails_at_once_says_so(invoke, cloud, fleet: Fleet) -> None:
    cloud.remove(responses.GET, cloud.registered()[0].url)
    cloud.add(
        responses.GET,
        f"{WORKSPACE}/v2/{PROJECT}/desktops",
        status=403,
        json={"error_code": "WKS.0403", "error_msg": "no permission to list desktops"},
    )
    summary = invoke(load_event("timer.json"))
    assert summary["incomplete"] is True and summary["unlisted"] is None
    assert "no permission to list desktops" in summary["errors"][0]
    assert "no permission to list desktops" in fleet.texts[0]


def test_a_failed_part_fails_the_invocation_after_delivering_each_earlier_part_once(invoke, fleet: Fleet) -> None:
    ids = fleet.add(9000, version="1.0")
    fleet.publish_error, fleet.publish_fails_from = (500, {"code": "SMN.0500", "message": "internal"}), 1
    with pytest.raises(DeliveryError, match=r"SMN\.0500"):
        invoke({"desktop_ids": ids})
    subjects = [p["subject"] for p in fleet.publish_attempts]
    assert subjects.count(subjects[0]) == 1 and "part 1/" in subjects[0]
    assert len(subjects) == 1 + 4  # part 2 tried four times; part 1 never again


def test_the_fingerprint_is_stable_across_retries_of_the_same_event(invoke, fleet: Fleet) -> None:
    ids = fleet.add(3, version="1.0")
    first = invoke({"desktop_ids": ids})
    second = invoke({"desktop_ids": list(reversed(ids))})
    assert first["fingerprint"] == second["fingerprint"]
    assert first["fingerprint"] in fleet.texts[0]


def test_rejected_credentials_are_not_used_again_not_even_to_publish(invoke, cloud, fleet: Fleet) -> None:
    ids = fleet.add(5)
    cloud.remove(responses.POST, SYSPREP)
    cloud.add(responses.POST, SYSPREP, status=401, json={"error_code": "APIG.0301", "error_msg": "bad signature"})
    with pytest.raises(DeliveryError, match=r"APIG\.0301"):
        invoke({"desktop_ids": ids})
    # The desktops' state, then the rejected sysprep call, and nothing after it: the gateway locks a key after 5 bad
    # signatures, so the publish is not sent either.
    assert [c.request.method for c in cloud.calls] == ["GET", "POST"] and cloud.calls[-1].request.url == SYSPREP
    assert fleet.publish_attempts == []
