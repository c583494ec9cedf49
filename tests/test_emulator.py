"""The function and its client against the local emulator, over real sockets: signatures, limits, jobs, faults."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

import index
from conftest import EVENTS, FakeClock, load_event
from devkit import samples
from devkit.context import Context
from devkit.emulator import (
    BUILDING,
    COMPLIANT,
    DROPPED,
    FAKE_AK,
    FAKE_SK,
    FAKE_TOKEN,
    KINDS,
    Emulator,
    Fault,
    Fleet,
    Sysprep,
    job_states,
    topic_urn,
)
from devkit.samples import desktop, job
from sysprep_guard import policy
from sysprep_guard.client import NO_RETRY, Credentials, SignedClient
from sysprep_guard.errors import ApiError, DeliveryError
from sysprep_guard.notification import Notification
from sysprep_guard.smn import Smn
from sysprep_guard.workspace import Workspace

PROJECT = "0123456789abcdef0123456789abcdef"
REGION = "ap-southeast-1"
JOB = job(1)  # the job of events/cts-create-desktops.json
BASE = f"/v2/{PROJECT}"
ROOT = Path(__file__).resolve().parent.parent
Run = Callable[..., dict[str, Any]]

# What the function must say of each seeded kind under MIN 3.0.10 with both capabilities required.
EXPECTED_REASONS = {
    "version_below_minimum": [policy.VERSION_BELOW_MINIMUM],
    "version_far_below_minimum": [policy.VERSION_BELOW_MINIMUM],
    "no_hibernate": [policy.HIBERNATE_NOT_SUPPORTED],
    "no_update_route": [policy.UPDATE_ROUTE_NOT_SUPPORTED],
    "version_missing": [policy.VERSION_MISSING],
    "version_unreadable": [policy.VERSION_UNREADABLE],
    "no_sysprep_info": [policy.NO_SYSPREP_INFO],
}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(project_id=PROJECT, region=REGION, fleet=Fleet.seeded(300, seed=11)) as emulator:
        yield emulator
    assert emulator.errors == []  # the emulator never answered 500 for a bug of its own


@pytest.fixture
def run(emu: Emulator, clock: FakeClock) -> Run:
    """The handler as FunctionGraph runs it, configured for the emulator; job polling sleeps on the fake clock."""

    def invoke(event: Any, *, secret_key: str = FAKE_SK, **settings: str) -> dict[str, Any]:
        user_data = {
            "REGION": REGION,
            "PROJECT_ID": PROJECT,
            "ENDPOINTS": emu.url,
            "SMN_TOPIC_URN": emu.topic,
            "MIN_SYSPREP_VERSION": "3.0.10",
            "REQUIRE_HIBERNATE": "true",
            "REQUIRE_UPDATE_ROUTE": "true",
            **settings,
        }
        context = Context(
            user_data, access_key=FAKE_AK, secret_key=secret_key, security_token=FAKE_TOKEN, now=clock.now
        )
        return index.handler(event, context)

    return invoke


def signed_client(ak: str = FAKE_AK, sk: str = FAKE_SK, token: str | None = FAKE_TOKEN) -> SignedClient:
    """The project's client without retries, so that each call meets the emulator exactly once."""
    client = SignedClient(PROJECT, retry=NO_RETRY)
    client.credentials = Credentials(ak=ak, sk=sk, token=token)
    return client


@pytest.fixture
def client() -> SignedClient:
    return signed_client()


def reasons_of(summary: dict[str, Any]) -> dict[str, list[str]]:
    return {f["desktop_id"]: f["reasons"] for f in summary["non_compliant"]}


def publish_path(topic: str) -> str:
    return f"{BASE}/notifications/topics/{quote(topic, safe='')}/publish"


# The function end to end ---------------------------------------------------------------------------


def test_timer_sweep_reports_exactly_the_seeded_non_compliant_desktops(run: Run, emu: Emulator) -> None:
    emu.fleet = fleet = Fleet.seeded(1_234, seed=5)  # two pages of ListDesktops
    assert set(EXPECTED_REASONS) | {COMPLIANT, BUILDING} == set(KINDS)  # a new kind needs its expectation

    summary = run(load_event("timer.json"))

    expected = {d.desktop_id: EXPECTED_REASONS[d.kind] for d in fleet if d.kind in EXPECTED_REASONS}
    building = fleet.ids(BUILDING)
    assert expected and building
    assert reasons_of(summary) == expected
    assert summary["unchecked"] == [{"desktop_id": d, "reason": "not_ready"} for d in building]
    assert summary["checked"] == 1_234 - len(building)
    assert summary["compliant"] == len(fleet.ids(COMPLIANT))
    assert summary["errors"] == [] and summary["incomplete"] is False

    assert emu.counts == {"list": 2, "sysprep": math.ceil(summary["checked"] / 100), "publish": 1}
    assert all(status == 200 for _, status in emu.calls) and emu.rejected_signatures == 0
    (published,) = emu.published
    assert summary["published"] == [published.message_id]
    assert published.topic_urn == emu.topic == topic_urn(REGION, PROJECT)
    assert published.subject.startswith(f"Sysprep: {len(expected)} of 1,234 desktops non-compliant")
    # One line per desktop reported, "- <id> (<name>, user <user>) version <v>: <reasons>", and no other.
    lines = {
        line.split()[1].rstrip(":"): line for line in (published.message or "").splitlines() if line.startswith("- ")
    }
    assert set(lines) == set(expected) | set(building)
    for desktop_id, reasons in expected.items():
        desktop = fleet[desktop_id]
        assert lines[desktop_id].startswith(f"- {desktop_id} ({desktop.computer_name}, user {desktop.user_name})")
        assert lines[desktop_id].endswith(": " + ", ".join(reasons))
    for desktop_id in building:
        assert lines[desktop_id] == f"- {desktop_id}: not_ready"


def test_edited_and_added_desktops_are_judged_as_edited(run: Run, emu: Emulator) -> None:
    compliant = emu.fleet.ids(COMPLIANT)[0]
    emu.fleet.update(compliant, sysprep=Sysprep(version="3.0.10", hibernate=None))
    old = emu.fleet.add(Sysprep(version="v2.9.9", update_route=False), computer_name="lab-07")
    bare = emu.fleet.add(None)
    good = emu.fleet.add(Sysprep(version="3.10.0"))

    summary = run({"desktop_ids": [compliant, old, bare, good]})

    assert reasons_of(summary) == {
        compliant: [policy.HIBERNATE_NOT_SUPPORTED],
        old: [policy.VERSION_BELOW_MINIMUM, policy.UPDATE_ROUTE_NOT_SUPPORTED],
        bare: [policy.NO_SYSPREP_INFO],
    }
    assert summary["compliant"] == 1 and emu.counts == {"detail": 1, "sysprep": 1, "publish": 1}


def test_scripted_job_is_polled_until_it_succeeds_then_its_desktops_are_judged(
    run: Run, emu: Emulator, clock: FakeClock
) -> None:
    bad = emu.fleet.add(Sysprep(version="3.0.1"), computer_name="eng-desk-10", user_name="alice")
    good = emu.fleet.add(computer_name="eng-desk-11")
    states = emu.add_creation_job(JOB, [bad, good], running=1)
    assert [s["status"] for s in states] == ["WAITING", "RUNNING", "SUCCESS"]
    assert emu.fleet[bad].task_status == "spawning" and emu.fleet[bad].sysprep is None  # being made

    summary = run(load_event("cts-create-desktops.json"))

    assert clock.sleeps == [2.0, 4.0]  # backoff between the WAITING, RUNNING and SUCCESS answers
    assert emu.counts == {"job": 3, "detail": 1, "sysprep": 1, "publish": 1}
    assert reasons_of(summary) == {bad: [policy.VERSION_BELOW_MINIMUM]}
    assert summary["non_compliant"][0]["computer_name"] == "eng-desk-10"
    assert summary["non_compliant"][0]["user_name"] == "alice"
    assert f"- {bad} (eng-desk-10, user alice) version 3.0.1" in (emu.published[0].message or "")


# What each sample event finds in the sample cloud (devkit/samples.py) under the local policy.
SAMPLE_FINDINGS = {
    "cts-create-desktops.json": {desktop(10): [policy.UPDATE_ROUTE_NOT_SUPPORTED]},
    "cts-create-desktop-order.json": {desktop(21): [policy.VERSION_BELOW_MINIMUM]},
    "cts-create-order.json": {desktop(30): [policy.HIBERNATE_NOT_SUPPORTED]},
    "cts-create-desktop-pool.json": {desktop(41): [policy.VERSION_MISSING]},
    "cts-expand-desktop-pool.json": {},
    "cts-rebuild-desktops.json": {desktop(1): [policy.VERSION_BELOW_MINIMUM]},  # the new image's Sysprep, 3.0.8
    "cts-change-image-order.json": {},  # the new image fixes desktop 2 (3.0.2 before)
    "cts-resource-id.json": {desktop(2): [policy.VERSION_BELOW_MINIMUM]},
    "eventgrid.json": {desktop(12): [policy.HIBERNATE_NOT_SUPPORTED]},
    "manual.json": {desktop(3): [policy.HIBERNATE_NOT_SUPPORTED]},
}


@pytest.mark.parametrize("name", sorted(SAMPLE_FINDINGS))
def test_each_sample_event_is_judged_once_workspace_is_done_with_its_desktops(
    name: str, run: Run, emu: Emulator, clock: FakeClock
) -> None:
    emu.fleet = samples.fleet(0)
    event = load_event(name)
    staged = samples.stage(emu, event)
    busy = {d.desktop_id for d in emu.fleet if d.task_status}  # being made or re-imaged while the job runs
    assert bool(busy) == bool(staged)

    summary = run(event, **samples.LOCAL_POLICY)

    assert reasons_of(summary) == SAMPLE_FINDINGS[name]
    assert summary["unchecked"] == [] and summary["errors"] == [] and summary["incomplete"] is False
    assert emu.counts["job"] == (2 if staged else 0)  # WAITING, then done
    assert all(not d.task_status for d in emu.fleet)


def test_every_sample_has_its_expected_findings() -> None:
    cts = {p.name for p in EVENTS.glob("*.json")} - {"timer.json", "manual-sweep.json", "estate-sweep.json"}
    assert set(SAMPLE_FINDINGS) == cts


@pytest.mark.parametrize("event", ["cts-create-desktops.json", "cts-rebuild-desktops.json", "cts-resource-id.json"])
def test_desktops_still_being_made_or_re_imaged_are_never_findings(event: str, run: Run, emu: Emulator) -> None:
    emu.fleet = samples.fleet(0)
    if event == "cts-create-desktops.json":  # the job outlasts the wait
        emu.add_creation_job(job(1), [desktop(10), desktop(11)], running=100)
    elif event == "cts-rebuild-desktops.json":
        emu.add_rebuild_job(job(6), {desktop(1): Sysprep(version="1.0"), desktop(4): None}, running=100)
    else:  # the trace names desktops and no job: their state is looked up
        for d in (desktop(1), desktop(2)):
            emu.fleet.update(d, task_status="rebuild_spawning")

    summary = run(load_event(event), JOB_WAIT_SECONDS="10", **samples.LOCAL_POLICY)

    assert summary["non_compliant"] == [] and summary["checked"] == 0
    assert [u["reason"] for u in summary["unchecked"]] == ["not_ready", "not_ready"]
    assert emu.counts["sysprep"] == 0


def test_a_wrong_secret_key_is_refused_with_apig_0301_and_the_function_surfaces_it(run: Run, emu: Emulator) -> None:
    first = emu.fleet.ids()[0]
    with pytest.raises(DeliveryError, match=r"APIG\.0301") as err:
        run({"desktop_ids": [first]}, secret_key="not-the-emulator-secret-key")
    assert "Incorrect IAM authentication information" in str(err.value)
    # A 401 is never retried, and the rejected key is not used again, not even to publish: the gateway
    # locks a key after 5 bad signatures in a row.
    assert emu.calls == [("detail", 401)]
    assert emu.rejected_signatures == 1 and emu.published == []


def test_throttling_during_a_sweep_is_retried_by_the_function(run: Run, emu: Emulator) -> None:
    emu.inject("sysprep", Fault.throttled())
    summary = run(load_event("timer.json"))
    assert summary["unchecked"] == [{"desktop_id": d, "reason": "not_ready"} for d in emu.fleet.ids(BUILDING)]
    assert summary["checked"] == 300 - len(emu.fleet.ids(BUILDING))
    batches = math.ceil(summary["checked"] / 100)
    assert Counter(status for kind, status in emu.calls if kind == "sysprep") == {429: 1, 200: batches}


# Signatures ------------------------------------------------------------------------------------------


def _send(
    client: SignedClient, endpoint: str, *, url: str | None = None, headers: dict[str, str] | None = None
) -> requests.Response:
    """Sign a ListDesktops call, then send it to `url` instead, or with `headers` changed after signing."""
    signed_url, signed_headers, _ = client.sign(
        "GET", endpoint, f"{BASE}/desktops", query=[("offset", 0), ("limit", 5)]
    )
    return requests.get(url or signed_url, headers={**signed_headers, **(headers or {})}, timeout=5)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda emu: requests.get(f"{emu.url}{BASE}/desktops", timeout=5), id="unsigned"),
        pytest.param(lambda emu: _send(signed_client(sk="wrong"), emu.url), id="wrong-secret-key"),
        pytest.param(lambda emu: _send(signed_client(ak="UNKNOWNAK0000000001"), emu.url), id="unknown-access-key"),
        pytest.param(lambda emu: _send(signed_client(token="other-token"), emu.url), id="wrong-token"),
        pytest.param(lambda emu: _send(signed_client(token=None), emu.url), id="token-missing"),
        pytest.param(
            lambda emu: _send(signed_client(), emu.url, url=f"{emu.url}{BASE}/desktops?limit=5&offset=1"),
            id="query-changed",
        ),
        pytest.param(
            lambda emu: _send(signed_client(), emu.url, headers={"X-Sdk-Date": "20200101T000000Z"}),
            id="date-changed",
        ),
        pytest.param(
            lambda emu: _send(signed_client(), emu.url, headers={"Authorization": "Basic ZmFrZTpmYWtl"}),
            id="other-scheme",
        ),
    ],
)
def test_badly_signed_requests_are_refused_like_the_gateway(emu: Emulator, tamper: Callable[..., Any]) -> None:
    answer = tamper(emu)
    assert answer.status_code == 401
    body = answer.json()
    assert body["error_code"] == "APIG.0301"
    assert body["error_msg"].startswith("Incorrect IAM authentication information: ")
    assert body["request_id"] == answer.headers["X-Request-Id"]
    assert emu.rejected_signatures == 1 and emu.calls == [("list", 401)]


def test_a_signed_body_cannot_be_swapped(emu: Emulator, client: SignedClient) -> None:
    desktops = emu.fleet.ids()
    url, headers, data = client.sign("POST", emu.url, f"{BASE}/sysprep", body={"desktop_ids": desktops[:1]})
    swapped = json.dumps({"desktop_ids": desktops[1:2]}, separators=(",", ":")).encode()
    assert len(swapped) == len(data or b"")
    assert requests.post(url, headers=headers, data=swapped, timeout=5).status_code == 401
    assert requests.post(url, headers=headers, data=data, timeout=5).status_code == 200


def test_the_signature_date_may_be_at_most_15_minutes_off(emu: Emulator, client: SignedClient) -> None:
    workspace = Workspace(client, emu.url, PROJECT)
    emu.clock = lambda: time.time() + 14 * 60
    assert workspace.list_page(0, 1).total_count == 300
    emu.clock = lambda: time.time() - 16 * 60
    with pytest.raises(ApiError, match="15 minutes") as err:
        workspace.list_page(0, 1)
    assert (err.value.status, err.value.code) == (401, "APIG.0301")


def test_a_permanent_key_signs_without_a_token(emu: Emulator) -> None:
    emu.keys["PERMANENTAK000000001"] = ("permanent-fake-secret-000001", None)
    client = signed_client("PERMANENTAK000000001", "permanent-fake-secret-000001", None)
    assert Workspace(client, emu.url, PROJECT).list_page(0, 2).total_count == 300
    with pytest.raises(ApiError, match="permanent access key"):
        Workspace(signed_client("PERMANENTAK000000001", "permanent-fake-secret-000001"), emu.url, PROJECT).job(JOB)


# Limits and answers -------------------------------------------------------------------------------


TOPIC = topic_urn(REGION, PROJECT)


def _ids(n: int) -> list[str]:
    return [str(uuid.UUID(int=i, version=4)) for i in range(n)]


Call = tuple[str, str, list[tuple[str, Any]], Any]  # method, path, query, body


def _workspace(method: str, path: str, query: list[tuple[str, Any]] | None = None, body: Any = None) -> Call:
    return (method, f"{BASE}{path}", query or [], body)


def _smn(body: dict[str, Any], topic: str = TOPIC) -> Call:
    return ("POST", publish_path(topic), [], body)


def _attributes(n: int, kind: str = "STRING", value: Any = "v") -> list[dict[str, Any]]:
    return [{"name": f"a{i}", "type": kind, "value": value} for i in range(n)]


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        pytest.param(_workspace("POST", "/sysprep", body={"desktop_ids": _ids(101)}), 400, "WKS.0001", id="101-ids"),
        pytest.param(_workspace("POST", "/sysprep", body={"desktop_ids": []}), 400, "WKS.0001", id="no-ids"),
        pytest.param(_workspace("POST", "/sysprep", body={"desktop_id": "x"}), 400, "WKS.0001", id="no-desktop_ids"),
        pytest.param(_workspace("GET", "/desktops", [("limit", 1001)]), 400, "WKS.0001", id="limit-1001"),
        pytest.param(_workspace("GET", "/desktops", [("limit", 0)]), 400, "WKS.0001", id="limit-0"),
        pytest.param(_workspace("GET", "/desktops", [("offset", -1)]), 400, "WKS.0001", id="offset-negative"),
        pytest.param(_workspace("GET", "/desktops", [("limit", "ten")]), 400, "WKS.0001", id="limit-not-a-number"),
        pytest.param(_smn({"subject": "é" * 256 + "x", "message": "m"}), 400, "SMN.0001", id="subject-513-bytes"),
        pytest.param(_smn({"message": "m"}), 400, "SMN.0001", id="no-subject"),
        pytest.param(
            _smn({"subject": "s", "message": "x" * (256 * 1024 + 1)}), 400, "SMN.0001", id="message-over-256KB"
        ),
        pytest.param(_smn({"subject": "s"}), 400, "SMN.0001", id="no-message"),
        pytest.param(
            _smn({"subject": "s", "message": "m", "message_template_name": "t"}), 400, "SMN.0001", id="two-messages"
        ),
        pytest.param(
            _smn({"subject": "s", "message_structure": '{"email": "x"}'}), 400, "SMN.0021", id="structure-no-default"
        ),
        pytest.param(
            _smn({"subject": "s", "message": "m", "message_attributes": _attributes(11)}),
            400,
            "SMN.0001",
            id="11-attributes",
        ),
        pytest.param(
            _smn({"subject": "s", "message": "m", "message_attributes": _attributes(1, "NUMBER")}),
            400,
            "SMN.0001",
            id="attribute-type",
        ),
        pytest.param(
            _smn({"subject": "s", "message": "m", "message_attributes": _attributes(1, value="ap-southeast-1")}),
            400,
            "SMN.0001",
            id="attribute-value-with-a-hyphen",
        ),
        pytest.param(
            _smn({"subject": "s", "message": "m", "message_attributes": _attributes(1, "STRING_ARRAY", ["a", "a"])}),
            400,
            "SMN.0001",
            id="attribute-array-repeats",
        ),
        pytest.param(
            _smn(
                {
                    "subject": "s",
                    "message": "m",
                    "message_attributes": [{"name": "Sev", "type": "STRING", "value": "x"}],
                }
            ),
            400,
            "SMN.0001",
            id="attribute-name-upper-case",
        ),
        pytest.param(
            _smn({"subject": "s", "message": "m"}, topic=topic_urn(REGION, PROJECT, "other")),
            404,
            "SMN.0006",
            id="unknown-topic",
        ),
        pytest.param(("GET", f"/v2/{'f' * 32}/desktops", [], None), 403, "WKS.0403", id="other-project"),
        pytest.param(_workspace("GET", "/workspace-jobs/nope"), 404, "WKS.0404", id="unknown-job"),
        pytest.param(
            _workspace("GET", "/desktops/detail", [("desktop_id", d) for d in _ids(101)]),
            400,
            "WKS.0001",
            id="101-detail-ids",
        ),
        pytest.param(_workspace("GET", "/desktop-pools"), 404, "APIG.0101", id="unknown-path"),
        pytest.param(_workspace("DELETE", "/desktops"), 404, "APIG.0101", id="unknown-method"),
    ],
)
def test_limits_are_enforced(emu: Emulator, client: SignedClient, call: Call, status: int, code: str) -> None:
    method, path, query, body = call
    with pytest.raises(ApiError) as err:
        client.call("direct", method, emu.url, path, query=query, body=body)
    assert (err.value.status, err.value.code) == (status, code)
    assert err.value.request_id  # from the X-Request-Id header or the body
    assert emu.rejected_signatures == 0 and emu.published == []


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(_workspace("POST", "/sysprep", body={"desktop_ids": _ids(100)}), id="100-ids"),
        pytest.param(_workspace("GET", "/desktops"), id="no-paging"),
        pytest.param(_workspace("GET", "/desktops", [("offset", 5000), ("limit", 1000)]), id="past-the-end"),
        pytest.param(_smn({"subject": "é" * 256, "message": "x" * 256 * 1024}), id="both-at-their-limit"),
        pytest.param(
            _smn(
                {
                    "subject": "s",
                    "message_structure": json.dumps({"default": "d", "email": "e"}),
                    "message_attributes": _attributes(10, "STRING_ARRAY", ["v"]),
                    "time_to_live": "3600",
                }
            ),
            id="structure-and-10-attributes",
        ),
        pytest.param(_smn({"subject": "s", "message_template_name": "t", "tags": {"k": "v"}}), id="template"),
    ],
)
def test_requests_at_the_limits_are_accepted(emu: Emulator, client: SignedClient, call: Call) -> None:
    method, path, query, body = call
    assert client.call("direct", method, emu.url, path, query=query, body=body) is not None
    assert emu.calls[0][1] == 200


def test_list_and_sysprep_answers(emu: Emulator, client: SignedClient) -> None:
    workspace = Workspace(client, emu.url, PROJECT)
    page = workspace.list_page(290, 1000)
    assert page.total_count == 300 and len(page.desktops) == 10
    assert [d.desktop_id for d in page.desktops] == emu.fleet.ids()[290:]
    raw = client.call("direct", "GET", emu.url, f"{BASE}/desktops", query=[("limit", 1)])["desktops"][0]
    listed = ("desktop_id", "computer_name", "user_name", "status", "created", "desktop_type", "tags")
    assert set(raw) == {*listed, "enterprise_project_id"}  # task_status only while Workspace works on it
    building = emu.fleet.ids(BUILDING)
    states = workspace.desktops([*building, compliant_id := emu.fleet.ids(COMPLIANT)[0], str(uuid.uuid4())])
    assert {d.desktop_id: d.busy for d in states} == {**dict.fromkeys(building, True), compliant_id: False}

    no_info = emu.fleet.ids("no_sysprep_info")[0]
    missing = emu.fleet.ids("version_missing")[0]
    compliant = emu.fleet.ids(COMPLIANT)[:2]
    unknown = str(uuid.uuid4())
    infos = workspace.check_sysprep([*compliant, no_info, missing, unknown, compliant[0].upper()])
    assert [i.desktop_id for i in infos] == [*compliant, missing]  # unknown and info-less ids are left out
    assert infos[2].sysprep_version is None and infos[2].support_hibernate is True


def test_publish_is_recorded_with_a_unique_message_id(emu: Emulator, client: SignedClient) -> None:
    smn = Smn(client, emu.url, PROJECT)
    first = smn.publish(emu.topic, note("Sysprep: 1 of 2 non-compliant", "line 1\nline 2 ü"))
    second = smn.publish(emu.topic, note("again", "m"))
    assert first != second
    assert [(p.topic_urn, p.subject, p.message_id) for p in emu.published] == [
        (TOPIC, "Sysprep: 1 of 2 non-compliant", first),
        (TOPIC, "again", second),
    ]
    assert emu.published[0].message == "line 1\nline 2 ü"
    assert emu.published[0].protocols == {"default": "line 1\nline 2 ü", "sms": "short"}
    assert emu.published[0].body["message_attributes"] == [{"name": "severity", "type": "STRING", "value": "high"}]


def note(subject: str, text: str) -> Notification:
    return Notification(
        subject=subject,
        message_structure=json.dumps({"default": text, "sms": "short"}),
        attributes=[{"name": "severity", "type": "STRING", "value": "high"}],
    )


def test_jobs_answer_their_states_in_turn_and_repeat_the_last(emu: Emulator, client: SignedClient) -> None:
    ids = emu.fleet.ids()[:2]
    emu.add_job(JOB, job_states(JOB, ids, running=2, final="FAILED"))
    workspace = Workspace(client, emu.url, PROJECT)
    statuses = [workspace.job(JOB).status for _ in range(5)]
    assert statuses == ["WAITING", "RUNNING", "RUNNING", "FAILED", "FAILED"]
    answer = workspace.job(JOB)
    assert [s.entities.desktop_id for s in answer.sub_jobs if s.entities] == ids
    assert answer.job_error_code and all(s.status == "FAILED" and s.fail_reason for s in answer.sub_jobs)


# Faults ----------------------------------------------------------------------------------------------


def _call(kind: str, emu: Emulator, client: SignedClient) -> Any:
    workspace = Workspace(client, emu.url, PROJECT)
    if kind == "list":
        return workspace.list_page(0, 10)
    if kind == "sysprep":
        return workspace.check_sysprep(emu.fleet.ids()[:3])
    if kind == "job":
        return workspace.job(JOB)
    return Smn(client, emu.url, PROJECT).publish(emu.topic, note("subject", "message"))


@pytest.mark.parametrize(
    ("kind", "fault", "status", "code", "text"),
    [
        ("list", Fault.throttled(), 429, "APIG.0308", "The throttling threshold has been reached"),
        ("sysprep", Fault.server_error(), 500, "WKS.0500", "Internal server error"),
        ("job", Fault.bad_gateway(), 502, None, "unexpected answer (text/html, 150 bytes)"),
        ("publish", Fault.unavailable(), 503, "APIG.0201", "Backend unavailable"),
        ("list", Fault.not_json(), 200, None, "answer is not JSON"),
        ("sysprep", Fault.wrong_shape(), None, None, "does not match the documented shape"),
        ("job", Fault.dropped(), None, None, "connection failed"),
        ("any", Fault.throttled(), 429, "APIG.0308", "throttling"),
    ],
    ids=lambda v: v.name if isinstance(v, Fault) else None,
)
def test_each_fault_is_observable_from_a_client_call(
    emu: Emulator, client: SignedClient, kind: str, fault: Fault, status: int | None, code: str | None, text: str
) -> None:
    emu.add_job(JOB, job_states(JOB, emu.fleet.ids()[:1]))
    target = "publish" if kind == "any" else kind
    emu.inject(kind, fault)  # type: ignore[arg-type]

    with pytest.raises(ApiError) as err:
        _call(target, emu, client)
    assert (err.value.status, err.value.code) == (status, code)
    assert text in str(err.value)
    if status is not None and status >= 300:
        assert err.value.request_id  # the X-Request-Id header comes with every answer

    assert _call(target, emu, client) is not None  # used up: the next call is answered normally
    assert emu.calls == [(target, DROPPED if fault.drop else fault.status), (target, 200)]


def test_faults_apply_in_order_for_the_given_number_of_calls(emu: Emulator, client: SignedClient) -> None:
    emu.inject("any", Fault.throttled(), times=2)
    emu.inject("sysprep", Fault.server_error())
    for kind, status in (("list", 429), ("sysprep", 429), ("sysprep", 500), ("sysprep", 200), ("list", 200)):
        try:
            _call(kind, emu, client)
            assert status == 200
        except ApiError as exc:
            assert exc.status == status
    assert [s for _, s in emu.calls] == [429, 429, 500, 200, 200]
    emu.inject("list", Fault.dropped(), times=3)
    emu.clear_faults()
    assert _call("list", emu, client) is not None


def test_latency_and_slow_answers_delay_the_answer(emu: Emulator, client: SignedClient) -> None:
    emu.latency = 0.02
    emu.inject("list", Fault.slow(0.05))
    started = time.monotonic()
    assert _call("list", emu, client).total_count == 300
    assert time.monotonic() - started >= 0.07
    assert emu.calls == [("list", 200)]


def test_a_slow_answer_outlasts_a_short_client_timeout(emu: Emulator, client: SignedClient) -> None:
    emu.inject("list", Fault.slow(0.3))
    url, headers, _ = client.sign("GET", emu.url, f"{BASE}/desktops")
    with pytest.raises(requests.ReadTimeout):
        requests.get(url, headers=headers, timeout=(1, 0.05))


def test_a_sleeper_blocks_neither_other_requests_nor_shutdown(client: SignedClient) -> None:
    emu = Emulator(project_id=PROJECT, fleet=Fleet.seeded(20)).start()
    emu.inject("list", Fault.slow(60))
    outcome: list[BaseException | Any] = []

    def slow_call() -> None:
        try:
            outcome.append(_call("list", emu, client))
        except ApiError as exc:
            outcome.append(exc)

    sleeper = threading.Thread(target=slow_call, daemon=True)
    sleeper.start()
    deadline = time.monotonic() + 2
    while emu.active < 1 and time.monotonic() < deadline:
        time.sleep(0.002)
    assert emu.active == 1

    assert _call("sysprep", emu, signed_client()) is not None  # answered while the list call sleeps
    assert emu.max_concurrency == 2 and sleeper.is_alive()

    started = time.monotonic()
    emu.stop()
    sleeper.join(timeout=2)
    assert time.monotonic() - started < 1 and not sleeper.is_alive()
    assert isinstance(outcome[0], ApiError) and "connection failed" in str(outcome[0])
    assert emu.calls == [("sysprep", 200), ("list", DROPPED)]
    emu.stop()  # stopping twice is harmless


def test_every_answer_carries_a_request_id(emu: Emulator, client: SignedClient) -> None:
    url, headers, _ = client.sign("GET", emu.url, f"{BASE}/desktops")
    emu.inject("list", Fault.bad_gateway())
    answers = [
        requests.get(url, headers=headers, timeout=5),  # 502 fault
        requests.get(url, headers=headers, timeout=5),  # 200
        requests.get(f"{emu.url}{BASE}/desktops", timeout=5),  # 401
        requests.get(f"{emu.url}/nowhere", timeout=5),  # 404
        requests.options(f"{emu.url}{BASE}/desktops", timeout=5),  # 501, from http.server itself
    ]
    assert [a.status_code for a in answers] == [502, 200, 401, 404, 501]
    ids = [a.headers["X-Request-Id"] for a in answers]
    assert len(set(ids)) == 5 and all(ids)


def test_inject_refuses_what_it_does_not_know(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="kind"):
        emu.inject("desktops", Fault.throttled())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times"):
        emu.inject("list", Fault.throttled(), times=0)


# The fleet -------------------------------------------------------------------------------------------


def test_a_seeded_fleet_is_reproducible_and_has_every_kind() -> None:
    fleet = Fleet.seeded(50, seed=3)
    assert fleet.ids() == Fleet.seeded(50, seed=3).ids()
    assert [d.kind for d in fleet] == [d.kind for d in Fleet.seeded(50, seed=3)]
    assert fleet.ids() != Fleet.seeded(50, seed=4).ids()
    assert set(fleet.kind_counts()) == set(KINDS) and fleet.kind_counts()[COMPLIANT] == 50 - 8
    assert all(uuid.UUID(d).version == 4 for d in fleet.ids())
    assert {d.sysprep.version for d in fleet if d.kind == COMPLIANT and d.sysprep} == {"3.1.2", "3.0.10", "3.10"}
    assert [(d.status, d.task_status) for d in fleet if d.kind == BUILDING] == [(None, "spawning")]
    assert Fleet.seeded(3).kind_counts().total() == 3 and len(Fleet.seeded(0)) == 0


def test_a_fleet_of_100000_is_compact_and_resolves_ids_without_a_table() -> None:
    tracemalloc.start()
    try:
        fleet = Fleet.seeded(100_000, seed=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
    assert len(fleet) == 100_000 and fleet.kind_counts()[BUILDING] == 2_000
    last = fleet.at(99_999)
    assert fleet[last.desktop_id.upper()] == last and fleet.get(str(uuid.uuid4())) is None
    assert last.desktop_id.endswith(f"{99_999:012x}") and fleet.get(last.desktop_id[:-12] + "0" * 11 + "z") is None
    assert [d.desktop_id for d in fleet.page(99_998, 1000)] == [fleet.at(99_998).desktop_id, last.desktop_id]


def test_fleet_edits_are_checked() -> None:
    fleet = Fleet.seeded(5)
    added = fleet.add(desktop_id="3F2C1A4E-9B7D-4C2A-8E1F-0A1B2C3D4E01")
    assert added == "3f2c1a4e-9b7d-4c2a-8e1f-0a1b2c3d4e01" and fleet.ids()[-1] == added and len(fleet) == 6
    with pytest.raises(ValueError, match="already"):
        fleet.add(desktop_id=added)
    with pytest.raises(ValueError, match="cannot change"):
        fleet.update(added, desktop_id=str(uuid.uuid4()))
    with pytest.raises(KeyError):
        fleet.update(str(uuid.uuid4()), status="SHUTOFF")
    assert fleet.update(added, status="SHUTOFF").status == "SHUTOFF" and fleet[added].kind == "custom"


# The CLI ---------------------------------------------------------------------------------------------


def test_the_cli_serves_until_ctrl_c(client: SignedClient) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devkit.emulator", "--port", "0", "--desktops", "7", "--quiet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("emulator listening on http://127.0.0.1:"), first
        url = first.split()[-1]
        banner = ""
        while "Ctrl-C" not in banner and (line := process.stdout.readline()):
            banner += line
        for shown in (PROJECT, TOPIC, FAKE_AK, FAKE_SK, FAKE_TOKEN, f"ENDPOINTS={url}"):
            assert shown in banner
        assert Workspace(client, url, PROJECT).list_page(0).total_count == 7
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=5)
    assert process.returncode == 0, err


def test_show_sysprep_info_answers_one_desktop_for_the_official_sdk_baseline(
    emu: Emulator, client: SignedClient
) -> None:
    desktop = emu.fleet.ids("version_below_minimum")[0]
    answer = client.call("direct", "GET", emu.url, f"{BASE}/desktops/{desktop}/sysprep")
    assert answer == {"sysprep_version": "3.0.9", "support_create_image": True}
    missing = emu.fleet.ids("no_sysprep_info")[0]
    with pytest.raises(ApiError) as err:
        client.call("direct", "GET", emu.url, f"{BASE}/desktops/{missing}/sysprep")
    assert err.value.status == 404 and emu.counts["show"] == 2
