"""The function end to end through `index.handler`, with the cloud mocked by `responses`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import FAKE_AK, FAKE_SK, FAKE_TOKEN, PROJECT, TOPIC, Fleet, Info, load_event, uuid_for
from devkit.samples import desktop, job
from sysprep_guard.errors import ConfigError, CredentialsError, DeliveryError, EventError

WHERE = "(ap-southeast-1, project 0123456789abcdef0123456789abcdef)"  # every subject says where


def reasons_of(summary: dict[str, Any]) -> dict[str, list[str]]:
    return {f["desktop_id"]: f["reasons"] for f in summary["non_compliant"]}


def test_timer_sweeps_every_page_and_publishes_the_non_compliant(invoke, fleet: Fleet) -> None:
    fleet.add(2100)
    fleet.desktops[uuid_for(7)].version = "3.0.9"
    fleet.desktops[uuid_for(2050)].hibernate = False

    summary = invoke(load_event("timer.json"), REQUIRE_HIBERNATE="yes")

    # Each page asked for once (the later ones in flight together, so in any order), stepped by the limit.
    assert sorted(int(c["offset"]) for c in fleet.list_calls) == [0, 1000, 2000]
    assert all(c["limit"] == "1000" for c in fleet.list_calls)
    assert summary["trigger"] == "timer"
    assert summary["checked"] == 2100 and summary["compliant"] == 2098
    assert reasons_of(summary) == {
        uuid_for(7): ["sysprep_version_below_minimum"],
        uuid_for(2050): ["hibernate_not_supported"],
    }
    assert summary["published"] == ["msg-1"] and summary["unchecked"] == []
    text = fleet.texts[0]
    assert uuid_for(7) in text and uuid_for(2050) in text
    assert fleet.published[0]["subject"] == f"Sysprep: 2 of 2,100 desktops non-compliant {WHERE}"


def test_sysprep_is_queried_in_batches_of_at_most_100(invoke, fleet: Fleet) -> None:
    fleet.add(250)
    invoke(load_event("manual-sweep.json"))
    assert sorted(len(b) for b in fleet.sysprep_calls) == [50, 100, 100]
    assert sorted(d for b in fleet.sysprep_calls for d in b) == sorted(fleet.desktops)


def test_nothing_non_compliant_publishes_nothing(invoke, fleet: Fleet) -> None:
    fleet.add(3)
    summary = invoke(load_event("timer.json"))
    assert summary["checked"] == 3 and summary["non_compliant"] == [] and summary["published"] == []
    assert fleet.published == []


def test_publish_goes_to_the_percent_encoded_topic_with_subject_and_every_reason(invoke, fleet: Fleet) -> None:
    (bad,) = fleet.add(1, version="2.1", update_route=False)
    invoke({"desktop_ids": [bad]}, REQUIRE_UPDATE_ROUTE="true")
    assert fleet.publish_paths == [
        f"/v2/{PROJECT}/notifications/topics/urn%3Asmn%3Aap-southeast-1%3A{PROJECT}%3Asysprep-alerts/publish"
    ]
    assert fleet.published_topics == [TOPIC]
    body = fleet.published[0]
    assert set(body) == {"subject", "message_structure", "message_attributes"}
    assert len(body["subject"].encode()) <= 512
    text = fleet.texts[0]
    assert (
        f"- {bad} (desk-0001, user user0001) version 2.1: sysprep_version_below_minimum, update_route_not_supported"
        in text
    )
    assert "Sysprep version >= 3.0.10" in text


def test_cts_resource_id_checks_those_desktops_without_listing(invoke, fleet: Fleet) -> None:
    ids = ["3f2c1a4e-9b7d-4c2a-8e1f-0a1b2c3d4e01", "3f2c1a4e-9b7d-4c2a-8e1f-0a1b2c3d4e02"]
    fleet.desktops.update({ids[0]: fleet_info("3.1.0"), ids[1]: fleet_info("3.0.2")})
    summary = invoke(load_event("cts-resource-id.json"))
    assert fleet.list_calls == []
    assert fleet.sysprep_calls == [ids]
    assert summary["trigger"] == "cts"
    assert reasons_of(summary) == {ids[1]: ["sysprep_version_below_minimum"]}


def fleet_info(version: str) -> Info:
    return Info(version=version)


def test_a_desktop_without_sysprep_info_is_non_compliant_not_passed(invoke, fleet: Fleet) -> None:
    ids = fleet.add(2)
    fleet.without_info.update(ids)  # listed by Workspace, left out of CheckSysprepInfo's answer
    summary = invoke({"desktop_ids": ids})
    assert list(reasons_of(summary).values()) == [["no_sysprep_info"], ["no_sysprep_info"]]
    assert summary["checked"] == 2 and summary["compliant"] == 0


def test_a_desktop_workspace_does_not_list_is_unchecked_not_a_finding(invoke, fleet: Fleet) -> None:
    summary = invoke(load_event("manual.json"))  # neither desktop is known to the mocked Workspace
    assert summary["non_compliant"] == [] and summary["checked"] == 0
    assert summary["unchecked"] == [{"desktop_id": d, "reason": "not_found"} for d in (desktop(3), desktop(4))]
    assert fleet.sysprep_calls == []


@pytest.mark.parametrize("task", ["spawning", "rebuilding", "block_device_mapping", "rebooting"])
def test_a_desktop_with_a_task_in_progress_is_never_a_finding(invoke, fleet: Fleet, task: str) -> None:
    busy, idle = fleet.add(2, version="1.0")
    fleet.task_status[busy] = task
    for event in ({"desktop_ids": [busy, idle]}, load_event("timer.json")):
        summary = invoke(event)
        assert reasons_of(summary) == {idle: ["sysprep_version_below_minimum"]}
        assert summary["unchecked"] == [{"desktop_id": busy, "reason": "not_ready"}]
    assert all(busy not in call for call in fleet.sysprep_calls)


@pytest.mark.parametrize("task", ["", None, "deleteFailed"])
def test_no_task_or_a_finished_one_is_judged(invoke, fleet: Fleet, task: str | None) -> None:
    (idle,) = fleet.add(1, version="1.0")
    if task is not None:
        fleet.task_status[idle] = task
    summary = invoke({"desktop_ids": [idle]})
    assert reasons_of(summary) == {idle: ["sysprep_version_below_minimum"]} and summary["unchecked"] == []


def test_unreadable_or_missing_versions_are_findings_of_their_own(invoke, fleet: Fleet) -> None:
    (a,) = fleet.add(1, start=1, version="beta")
    (b,) = fleet.add(1, start=2, version=None)
    summary = invoke({"desktop_ids": [a, b]})
    assert reasons_of(summary) == {a: ["sysprep_version_unreadable"], b: ["sysprep_version_missing"]}


def job_state(status: str, subs: list[tuple[str, str | None]]) -> dict[str, Any]:
    return {
        "id": JOB,
        "job_type": "CREATE_DESKTOP",
        "status": status,
        "sub_jobs_total": len(subs),
        "sub_jobs": [
            {"id": f"sub-{n}", "status": s, "entities": {"desktop_id": d, "desktop_name": f"eng-desk-{n}"}}
            for n, (s, d) in enumerate(subs)
        ],
    }


JOB = job(1)  # the job of events/cts-create-desktops.json


def test_cts_job_is_polled_with_backoff_until_it_ends(invoke, fleet: Fleet, clock) -> None:
    ok, failed = uuid_for(11), uuid_for(12)
    fleet.add(1, start=11, version="3.0.1")
    fleet.jobs[JOB] = [
        job_state("RUNNING", [("RUNNING", ok), ("RUNNING", None)]),
        job_state("RUNNING", [("SUCCESS", ok), ("RUNNING", failed)]),
        job_state("FAILED", [("SUCCESS", ok), ("FAILED", failed)]),
    ]
    summary = invoke(load_event("cts-create-desktops.json"))
    assert clock.sleeps == [2.0, 4.0]
    assert fleet.detail_calls == [[ok]] and fleet.sysprep_calls == [[ok]]  # the failed sub-job's desktop: not judged
    assert reasons_of(summary) == {ok: ["sysprep_version_below_minimum"]}
    assert summary["non_compliant"][0]["computer_name"] == "desk-0011"  # as Workspace lists it now
    assert summary["unchecked"] == []


def test_desktops_still_provisioning_when_the_wait_ends_are_unchecked(invoke, fleet: Fleet, clock) -> None:
    ready, slow = uuid_for(21), uuid_for(22)
    fleet.add(1, start=21)
    fleet.jobs[JOB] = [job_state("RUNNING", [("SUCCESS", ready), ("RUNNING", slow)])]
    summary = invoke(load_event("cts-create-desktops.json"), JOB_WAIT_SECONDS="20")
    assert sum(clock.sleeps) <= 20
    assert fleet.sysprep_calls == [[ready]]
    assert summary["checked"] == 1 and summary["compliant"] == 1
    assert summary["unchecked"] == [{"desktop_id": slow, "reason": "not_ready"}]
    assert slow in fleet.texts[0]  # operators hear of it


def test_job_wait_never_runs_past_the_invocation_deadline(invoke, fleet: Fleet, clock) -> None:
    fleet.jobs[JOB] = [job_state("RUNNING", [("RUNNING", uuid_for(31))])]
    invoke(load_event("cts-create-desktops.json"), timeout=60)
    assert sum(clock.sleeps) <= 60 - 10


def test_eventgrid_cloud_event_is_handled_like_its_cts_trace(invoke, fleet: Fleet) -> None:
    made = desktop(12)
    fleet.desktops[made] = fleet_info("3.0.10")
    fleet.jobs[job(8)] = [{**job_state("SUCCESS", [("SUCCESS", made)]), "id": job(8)}]
    summary = invoke(load_event("eventgrid.json"))
    assert summary["trigger"] == "eventgrid"
    assert fleet.sysprep_calls == [[made]] and summary["compliant"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"service_type": "ECS"},
        {"trace_name": "deleteDesktop"},
        {"trace_rating": "incident"},
        {"trace_rating": "warning"},
        {"code": "500"},
        {"code": 403},
    ],
)
def test_other_or_failed_traces_are_skipped_without_any_call(invoke, cloud, change, capsys) -> None:
    event = load_event("cts-resource-id.json")
    event["cts"].update(change)
    summary = invoke(event, keys=False)  # a skip needs no credentials either
    assert summary["skipped"] and summary["checked"] == 0
    assert len(cloud.calls) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["message"] for line in lines] == ["event skipped"]
    assert event["cts"]["trace_name"] in lines[0]["reason"]


@pytest.mark.parametrize(
    "event",
    [
        {},
        [],
        "createDesktop",
        {"trigger_type": "APIG"},
        {"desktop_ids": []},
        {"desktop_ids": ["not-a-uuid"]},
        {"desktop_ids": [uuid_for(1)], "sweep": True},
        {"sweep": False},
        {"cts": {"service_type": "Workspace"}},
        {"cts": "not a trace"},
        {"cts": {"service_type": "Workspace", "trace_name": ["createDesktops"]}},
        {"specversion": "1.0", "type": "WORKSPACE:CloudTrace:ApiCall", "data": "not a trace"},
    ],
)
def test_bad_events_fail_clearly_before_any_call(invoke, cloud, event) -> None:
    with pytest.raises(EventError) as err:
        invoke(event)
    assert "expected" in str(err.value) or "malformed" in str(err.value)
    assert len(cloud.calls) == 0


def test_bad_configuration_names_the_key_before_any_call(invoke, cloud) -> None:
    with pytest.raises(ConfigError, match="MIN_SYSPREP_VERSION='three'"):
        invoke(load_event("manual.json"), MIN_SYSPREP_VERSION="three")
    assert len(cloud.calls) == 0


def test_missing_credentials_say_to_configure_an_agency(invoke, cloud) -> None:
    with pytest.raises(CredentialsError, match="agency"):
        invoke(load_event("manual.json"), keys=False)
    assert len(cloud.calls) == 0


def test_environment_credentials_work_outside_functiongraph(invoke, fleet: Fleet, monkeypatch, cloud) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", FAKE_AK)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", FAKE_SK)
    fleet.add(1)
    invoke({"desktop_ids": [uuid_for(1)]}, keys=False)
    assert cloud.calls[0].request.headers["Authorization"].startswith(f"SDK-HMAC-SHA256 Access={FAKE_AK},")
    assert "X-Security-Token" not in cloud.calls[0].request.headers


def test_every_call_is_signed_with_the_agency_token(invoke, fleet: Fleet, cloud) -> None:
    fleet.add(1, version="1.0")
    invoke({"desktop_ids": [uuid_for(1)]})
    assert len(cloud.calls) == 3  # the desktop's state, its Sysprep, the publish
    for call in cloud.calls:
        headers = call.request.headers
        assert headers["X-Security-Token"] == FAKE_TOKEN and headers["X-Project-Id"] == PROJECT
        assert "x-security-token" in headers["Authorization"] and "X-Sdk-Date" in headers


def test_dry_run_reports_but_publishes_nothing(invoke, fleet: Fleet, user_data) -> None:
    del user_data["SMN_TOPIC_URN"]
    fleet.add(1, version="1.0")
    summary = invoke({"desktop_ids": [uuid_for(1)]}, DRY_RUN="1")
    assert summary["dry_run"] is True and len(summary["non_compliant"]) == 1
    assert summary["published"] == [] and fleet.published == []


def test_undelivered_findings_fail_the_invocation(invoke, fleet: Fleet) -> None:
    fleet.add(1, version="1.0")
    fleet.publish_error = (403, {"request_id": "r9", "code": "SMN.0004", "message": "no permission"})
    with pytest.raises(DeliveryError, match=r"SMN\.0004") as err:
        invoke({"desktop_ids": [uuid_for(1)]})
    assert "smn:topic:publish" in str(err.value)


def test_logs_are_json_lines_with_the_request_id_and_no_secret(invoke, fleet: Fleet, capsys) -> None:
    fleet.add(1, version="1.0")
    summary = invoke({"desktop_ids": [uuid_for(1)]})
    with pytest.raises(EventError):
        invoke({"desktop_ids": ["nope"]})
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines and all(line["request_id"] for line in lines)
    for text in (out, json.dumps(summary)):
        for secret in (FAKE_AK, FAKE_SK, FAKE_TOKEN, "SDK-HMAC-SHA256", "Signature="):
            assert secret not in text


def test_an_unexpected_error_is_logged_as_one_scrubbed_line_and_fails_the_invocation(
    invoke, fleet: Fleet, monkeypatch, capsys
) -> None:
    fleet.add(1)

    def broken(*args: Any) -> None:
        raise RuntimeError(f"bug while holding {FAKE_SK}")

    monkeypatch.setattr("sysprep_guard.judging.judge", broken)
    with pytest.raises(RuntimeError):
        invoke({"desktop_ids": [uuid_for(1)]})
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "unexpected" in x]
    assert line["error"] == "RuntimeError: bug while holding [redacted]"


def test_a_job_that_ends_late_in_the_invocation_is_still_judged(invoke, fleet: Fleet, clock) -> None:
    done = uuid_for(41)
    fleet.add(1, start=41)
    running = job_state("RUNNING", [("RUNNING", done)])
    fleet.jobs[JOB] = [running, running, running, running, job_state("SUCCESS", [("SUCCESS", done)])]
    summary = invoke(load_event("cts-create-desktops.json"), timeout=40)  # polls at 0, 2, 6, 14 s, then at the limit
    assert summary["checked"] == 1 and summary["unchecked"] == [] and summary["errors"] == []
    assert clock.t - 1000 <= 40 - 10
