"""The emulator as an estate: several projects, regions and accounts on one port, IAM's agency keys, FunctionGraph's
asynchronous invocations run in-process, and desktop tags. Over real sockets, signed as huaweicloudsdkcore signs;
the new answers held to the official SDK models (huaweicloudsdkiam, huaweicloudsdkfunctiongraph,
huaweicloudsdkworkspace 3.1.219) with no field lost, and the new requests built into the official request models."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlsplit

import huaweicloudsdkfunctiongraph.v2.model as fgs_models
import huaweicloudsdkiam.v3.model as iam_models
import huaweicloudsdkworkspace.v2.model as workspace_models
import pytest
import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from huaweicloudsdkfunctiongraph.v2 import FunctionGraphClient
from huaweicloudsdkiam.v3 import IamClient
from huaweicloudsdkworkspace.v2 import WorkspaceClient
from obs import ObsClient

from devkit.emulator import (
    ASYNC_BODY_MAX_BYTES,
    COMPLIANT,
    DEFAULT_DOMAIN_ID,
    FAKE_AK,
    FAKE_SK,
    FAKE_TOKEN,
    Emulator,
    Fault,
    Fleet,
    Issued,
    banner,
    fgs_throttled,
    iam_outage,
    iam_refused,
    topic_urn,
)
from test_conformance import deserialise, lost_fields

CENTRAL = "0123456789abcdef0123456789abcdef"  # the default project, ap-southeast-1
SECOND = "22222222222222222222222222222222"  # the central account's project in cn-north-4
MEMBER = "33333333333333333333333333333333"  # member-a's project in ap-southeast-3
REGION = "ap-southeast-1"
AGENCY = "sysprep-guard-reader"
FUNCTION = f"urn:fss:{REGION}:{CENTRAL}:function:default:sysprep-guard:latest"
ASSUME_PATH = "/v3.0/OS-CREDENTIAL/securitytokens"  # CreateTemporaryAccessKeyByAgency's definition

pytestmark = [
    pytest.mark.filterwarnings(f"ignore:datetime.datetime.utcnow:DeprecationWarning:{module}")
    for module in ("obs.client", "huaweicloudsdkcore.signer.signer")
]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """The default project, a second central project in another region, and member-a's project with an agency
    trusting the central account."""
    with Emulator(project_id=CENTRAL, region=REGION, fleet=Fleet.seeded(30, seed=1), record=True, ces=True) as e:
        e.add_project(SECOND, "cn-north-4", Fleet.seeded(20, seed=2))
        e.add_account("member-a")
        e.add_project(MEMBER, "ap-southeast-3", Fleet.seeded(10, seed=3), account="member-a")
        e.add_agency("member-a", AGENCY)
        yield e
    assert e.errors == []  # the emulator never answered 500 for a bug of its own


# Signing and sending -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    ak: str
    sk: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


CENTRAL_KEYS = Keys(FAKE_AK, FAKE_SK, FAKE_TOKEN)


def keys_of(issued: Issued) -> Keys:
    return Keys(issued.access, issued.secret, issued.token)


def send(
    emu: Emulator,
    method: str,
    path: str,
    keys: Keys = CENTRAL_KEYS,
    *,
    project: str | None = CENTRAL,
    query: Iterable[tuple[str, str]] = (),
    body: Any = None,
    raw: bytes | None = None,
) -> requests.Response:
    """A request signed SDK-HMAC-SHA256 as huaweicloudsdkcore signs it (X-Project-Id and X-Security-Token as
    BasicCredentials adds them), sent with requests: exactly the bytes signed."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    host = urlsplit(emu.url).netloc
    headers = {"Content-Type": "application/json", "X-Sdk-Date": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")}
    if project is not None:
        headers["X-Project-Id"] = project
    if keys.token:
        headers["X-Security-Token"] = keys.token
    query = list(query)
    request = SdkRequest(method, "http", host, path, query_params=query, header_params=headers, body=data)
    signed = Signer(keys).sign(request)
    return requests.request(method, f"{emu.url}{signed.uri}", headers=signed.header_params, data=data, timeout=10)


def assume_body(agency: str = AGENCY, **role: Any) -> dict[str, Any]:
    assume_role = {"agency_name": agency, "domain_name": "member-a", **role}
    return {"auth": {"identity": {"methods": ["assume_role"], "assume_role": assume_role}}}


def assume(emu: Emulator, keys: Keys = CENTRAL_KEYS, **role: Any) -> Keys:
    answer = send(emu, "POST", ASSUME_PATH, keys, body=assume_body(**role))
    assert answer.status_code == 201, answer.text
    credential = answer.json()["credential"]
    return Keys(credential["access"], credential["secret"], credential["securitytoken"])


def list_path(project: str, detail: bool = False) -> str:
    return f"/v2/{project}/desktops" + ("/detail" if detail else "")


def invoke_path(urn: str = FUNCTION, project: str = CENTRAL) -> str:
    return f"/v2/{project}/fgs/functions/{quote(urn, safe='')}/invocations-async"


def workspace_error(answer: requests.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["error_code"]


def iam_error(answer: requests.Response) -> tuple[int, str]:
    """IAM's Keystone error {"error": {"code", "message", "title"}}: (status, title), the code being the status."""
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "title"} and error["code"] == answer.status_code
    return answer.status_code, error["title"]


# Official models --------------------------------------------------------------------------------------------


def conforms(data: Any, kind: str, package: Any) -> Any:
    assert list(lost_fields(data, kind, package)) == [], kind
    return deserialise(data, kind, package)


def official(client_class: Any, emu: Emulator, keys: Keys, project: str) -> Any:
    credentials = BasicCredentials(keys.ak, keys.sk, project)
    if keys.token:
        credentials = credentials.with_security_token(keys.token)
    return client_class.new_builder().with_credentials(credentials).with_endpoints([emu.url]).build()


# Projects, regions and accounts -------------------------------------------------------------------------------


def test_each_project_lists_its_own_desktops(emu: Emulator) -> None:
    member = assume(emu)
    for project, keys, fleet_size in ((CENTRAL, CENTRAL_KEYS, 30), (SECOND, CENTRAL_KEYS, 20), (MEMBER, member, 10)):
        fleet = emu.project(project).fleet  # type: ignore[union-attr]
        for detail in (False, True):
            answer = send(emu, "GET", list_path(project, detail), keys, project=project)
            assert answer.status_code == 200, answer.text
            listed = answer.json()
            assert listed["total_count"] == fleet_size == len(fleet)
            assert [d["desktop_id"] for d in listed["desktops"]] == fleet.ids()
    assert emu.project(SECOND).region == "cn-north-4"  # type: ignore[union-attr]
    assert emu.project(MEMBER).domain_id == emu.estate.account("member-a").domain_id  # type: ignore[union-attr]


def test_sysprep_checks_and_jobs_belong_to_their_project(emu: Emulator) -> None:
    member = assume(emu)
    member_ids = emu.project(MEMBER).fleet.ids()[:5]  # type: ignore[union-attr]
    checked = send(emu, "POST", f"/v2/{MEMBER}/sysprep", member, project=MEMBER, body={"desktop_ids": member_ids})
    assert {i["desktop_id"] for i in checked.json()["sysprep_infos"]} <= set(member_ids)
    assert checked.json()["sysprep_infos"]
    elsewhere = send(emu, "POST", f"/v2/{SECOND}/sysprep", project=SECOND, body={"desktop_ids": member_ids})
    assert elsewhere.json() == {"sysprep_infos": []}  # another project's desktops are unknown there

    emu.add_creation_job("job-in-second", emu.project(SECOND).fleet.ids()[:1], project_id=SECOND)  # type: ignore[union-attr]
    assert send(emu, "GET", f"/v2/{SECOND}/workspace-jobs/job-in-second", project=SECOND).json()["status"] == "WAITING"
    assert workspace_error(send(emu, "GET", f"/v2/{CENTRAL}/workspace-jobs/job-in-second")) == (404, "WKS.0404")


def test_keys_work_only_in_their_own_accounts_projects(emu: Emulator) -> None:
    member = assume(emu)
    central_on_member = send(emu, "GET", list_path(MEMBER), project=MEMBER)
    assert workspace_error(central_on_member) == (403, "WKS.0403")
    assert "belongs to account" in central_on_member.json()["error_msg"]
    for project in (CENTRAL, SECOND):
        assert workspace_error(send(emu, "GET", list_path(project), member, project=project)) == (403, "WKS.0403")
    unknown = "4" * 32
    assert workspace_error(send(emu, "GET", list_path(unknown), project=unknown)) == (403, "WKS.0403")
    assert workspace_error(send(emu, "GET", list_path(unknown), member, project=unknown)) == (403, "WKS.0403")

    # The central services stay central: SMN, Cloud Eye, FunctionGraph, OBS refuse the member's keys.
    topic = quote(topic_urn(REGION, CENTRAL), safe="")
    publish = send(emu, "POST", f"/v2/{CENTRAL}/notifications/topics/{topic}/publish", member, body={"subject": "s"})
    assert (publish.status_code, publish.json()["code"]) == (403, "SMN.0001")
    metrics = send(emu, "POST", f"/V1.0/{CENTRAL}/metric-data", member, body=[])
    assert (metrics.status_code, metrics.json()["message"]["code"]) == (403, "ces.0017")
    emu.add_function(FUNCTION, lambda event, request_id: None)
    assert workspace_error(send(emu, "POST", invoke_path(), member, body={})) == (403, "FSS.0403")
    assert emu.rejected_signatures == 0  # every one of them was signed correctly: refused for its account


def test_obs_refuses_a_member_accounts_keys() -> None:
    with Emulator(buckets=["sysprep-state"]) as emu:
        emu.add_account("member-a")
        emu.add_agency("member-a", AGENCY)
        member = assume(emu)
        client = ObsClient(
            access_key_id=member.ak,
            secret_access_key=member.sk,
            security_token=member.token,
            server=emu.url,
            path_style=True,
            signature="obs",
            is_signature_negotiation=False,
            max_retry_count=0,
            timeout=10,
        )
        try:
            put = client.putContent("sysprep-state", "runs/x.json", content=b"{}")
        finally:
            client.close()
        assert (put.status, put.errorCode) == (403, "AccessDenied")
        assert emu.buckets["sysprep-state"] == {}
        assert emu.errors == []


# IAM CreateTemporaryAccessKeyByAgency -------------------------------------------------------------------------


def test_assume_issues_keys_for_the_member_project_only(emu: Emulator) -> None:
    iam = official(IamClient, emu, CENTRAL_KEYS, CENTRAL)
    body = iam_models.CreateTemporaryAccessKeyByAgencyRequestBody(
        auth=iam_models.AgencyAuth(
            identity=iam_models.AgencyAuthIdentity(
                methods=["assume_role"],
                assume_role=iam_models.IdentityAssumerole(
                    agency_name=AGENCY, domain_name="member-a", duration_seconds=3600
                ),
            )
        )
    )
    before = time.time()
    answer = iam.create_temporary_access_key_by_agency(iam_models.CreateTemporaryAccessKeyByAgencyRequest(body=body))
    assert answer.status_code == 201
    credential = answer.credential
    expires = datetime.strptime(credential.expires_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert before + 3600 - 1 <= expires.timestamp() <= time.time() + 3600 + 1

    (issued,) = emu.issued
    member_domain = emu.estate.account("member-a").domain_id
    assert (issued.account, issued.agency, issued.duration, issued.caller) == (
        member_domain,
        AGENCY,
        3600,
        DEFAULT_DOMAIN_ID,
    )
    assert (issued.access, issued.secret, issued.token) == (
        credential.access,
        credential.secret,
        credential.securitytoken,
    )

    member = Keys(credential.access, credential.secret, credential.securitytoken)
    workspace = official(WorkspaceClient, emu, member, MEMBER)
    listed = workspace.list_desktops(workspace_models.ListDesktopsRequest(limit=5))
    assert listed.total_count == 10 and len(listed.desktops) == 5
    with pytest.raises(ClientRequestException) as refused:
        official(WorkspaceClient, emu, member, SECOND).list_desktops(workspace_models.ListDesktopsRequest())
    assert (refused.value.status_code, refused.value.error_code) == (403, "WKS.0403")

    again = assume(emu, domain_id=member_domain, domain_name=None)  # by domain id; default duration
    assert again.ak != member.ak and again.sk != member.sk and again.token != member.token
    assert [i.duration for i in emu.issued] == [3600, 900]


@pytest.mark.parametrize(
    ("role", "identity", "status", "title"),
    [
        pytest.param({"agency_name": "no-such-agency"}, {}, 403, "Forbidden", id="unknown-agency"),
        pytest.param({"domain_name": "no-such-account"}, {}, 403, "Forbidden", id="unknown-domain-name"),
        pytest.param({"domain_id": "0" * 32, "domain_name": None}, {}, 403, "Forbidden", id="unknown-domain-id"),
        pytest.param({}, {"methods": ["password"]}, 400, "Bad Request", id="methods-password"),
        pytest.param({}, {"methods": ["assume_role", "token"]}, 400, "Bad Request", id="two-methods"),
        pytest.param({"duration_seconds": 899}, {}, 400, "Bad Request", id="duration-899"),
        pytest.param({"duration_seconds": 86_401}, {}, 400, "Bad Request", id="duration-86401"),
        pytest.param({"duration_seconds": "900"}, {}, 400, "Bad Request", id="duration-as-text"),
        pytest.param({"domain_name": None}, {}, 400, "Bad Request", id="no-domain"),
        pytest.param({"duration": 900}, {}, 400, "Bad Request", id="unknown-field"),
        pytest.param({"session_user": {"name": "ab"}}, {}, 400, "Bad Request", id="session-user-too-short"),
    ],
)
def test_assume_refuses_what_iam_refuses(
    emu: Emulator, role: dict[str, Any], identity: dict[str, Any], status: int, title: str
) -> None:
    body = assume_body(**role)
    assume_role = body["auth"]["identity"]["assume_role"]
    body["auth"]["identity"]["assume_role"] = {k: v for k, v in assume_role.items() if v is not None}
    body["auth"]["identity"].update(identity)
    assert iam_error(send(emu, "POST", ASSUME_PATH, body=body)) == (status, title)
    assert emu.issued == []


def test_assume_succeeds_at_the_duration_limits_and_with_a_session_user(emu: Emulator) -> None:
    assume(emu, duration_seconds=900)
    assume(emu, duration_seconds=86_400, session_user={"name": "SweepUser"})
    assert [(i.duration, i.session_user) for i in emu.issued] == [(900, None), (86_400, "SweepUser")]


def test_only_the_trusted_account_may_assume_an_agency(emu: Emulator) -> None:
    emu.add_account("member-b")
    emu.add_agency("member-a", "trusts-member-b", trusts="member-b")
    untrusted = send(emu, "POST", ASSUME_PATH, body=assume_body("trusts-member-b"))
    assert iam_error(untrusted) == (403, "Forbidden")
    assert "does not trust" in untrusted.json()["error"]["message"]
    member = assume(emu)  # the member's own keys cannot assume an agency that trusts the central account
    assert iam_error(send(emu, "POST", ASSUME_PATH, member, body=assume_body())) == (403, "Forbidden")
    assert len(emu.issued) == 1


def test_issued_keys_expire_on_the_emulators_clock(emu: Emulator) -> None:
    emu.clock = lambda: time.time() - 800  # the server's clock runs behind, within the signature's 15 minutes
    member = assume(emu)  # 900 s: it expires 100 s from now, real time
    assert send(emu, "GET", list_path(MEMBER), member, project=MEMBER).status_code == 200
    emu.clock = lambda: time.time() + 150  # now past its expiry, still within the signature's window
    expired = send(emu, "GET", list_path(MEMBER), member, project=MEMBER)
    assert workspace_error(expired) == (401, "APIG.0301")
    assert "expired at" in expired.json()["error_msg"]
    assert send(emu, "GET", list_path(CENTRAL)).status_code == 200  # the central keys do not expire

    fresh = assume(emu)
    assert send(emu, "GET", list_path(MEMBER), fresh, project=MEMBER).status_code == 200
    assert emu.expire_issued_keys("member-a") == 1  # the first had expired already
    assert workspace_error(send(emu, "GET", list_path(MEMBER), fresh, project=MEMBER)) == (401, "APIG.0301")


def test_faults_can_be_injected_into_assume(emu: Emulator) -> None:
    emu.inject("assume", iam_refused())
    emu.inject("assume", iam_outage())
    emu.inject("assume", Fault.throttled())
    assert iam_error(send(emu, "POST", ASSUME_PATH, body=assume_body())) == (403, "Forbidden")
    assert iam_error(send(emu, "POST", ASSUME_PATH, body=assume_body())) == (500, "Internal Server Error")
    assert workspace_error(send(emu, "POST", ASSUME_PATH, body=assume_body())) == (429, "APIG.0308")
    assume(emu)
    assert [status for kind, status in emu.calls if kind == "assume"] == [403, 500, 429, 201]


# FunctionGraph AsyncInvokeFunction --------------------------------------------------------------------------


def test_async_invocations_run_in_order_one_at_a_time_after_their_202(emu: Emulator) -> None:
    gate = threading.Event()
    runs: list[tuple[dict[str, Any], str]] = []
    running, most = [0], [0]
    lock = threading.Lock()

    def run(event: dict[str, Any], request_id: str) -> str:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        gate.wait(timeout=10)  # the first run holds the instance until every caller has its 202
        with lock:
            runs.append((event, request_id))
            running[0] -= 1
        return f"done {event['n']}"

    emu.add_function(FUNCTION, run)
    events = [{"n": n, "target": {"project_id": MEMBER, "region": "ap-southeast-3"}, "note": "é✓"} for n in range(4)]
    answers = [send(emu, "POST", invoke_path(), body=event) for event in events]
    assert [a.status_code for a in answers] == [202] * 4  # answered while the first run still waits
    request_ids = [a.json()["request_id"] for a in answers]
    assert len(set(request_ids)) == 4
    gate.set()
    assert emu.wait_for_invocations(timeout=10)
    assert runs == list(zip(events, request_ids, strict=True))  # the exact bodies, in arrival order
    assert most[0] == 1
    assert [(i.urn, i.event, i.request_id, i.result, i.error, i.finished) for i in emu.invocations] == [
        (FUNCTION, event, request_id, f"done {event['n']}", None, True)
        for event, request_id in zip(events, request_ids, strict=True)
    ]


def test_a_failing_invocation_is_recorded_and_the_next_still_runs(emu: Emulator) -> None:
    def run(event: dict[str, Any], request_id: str) -> str:
        if event.get("fail"):
            raise RuntimeError("boom")
        return "ok"

    emu.add_function(FUNCTION, run)
    assert send(emu, "POST", invoke_path(), body={"fail": True}).status_code == 202
    assert send(emu, "POST", invoke_path(), raw=b"").status_code == 202  # no body: an empty event
    assert emu.wait_for_invocations(timeout=10)
    failed, succeeded = emu.invocations
    assert (failed.error, failed.result, failed.finished) == ("RuntimeError: boom", None, True)
    assert "RuntimeError: boom" in (failed.trace or "")
    assert (succeeded.event, succeeded.result, succeeded.error) == ({}, "ok", None)


def test_an_invocation_can_fan_out_into_more(emu: Emulator) -> None:
    """A run calls the emulator back, as the function does: it sweeps a project and invokes itself again."""
    member = assume(emu)
    totals: dict[str, int] = {}

    def run(event: dict[str, Any], request_id: str) -> None:
        if "targets" in event:
            for target in event["targets"]:
                assert send(emu, "POST", invoke_path(), body={"target": target}).status_code == 202
            return
        project, keys = event["target"], (member if event["target"] == MEMBER else CENTRAL_KEYS)
        totals[project] = send(emu, "GET", list_path(project), keys, project=project).json()["total_count"]

    emu.add_function(FUNCTION, run)
    assert send(emu, "POST", invoke_path(), body={"targets": [CENTRAL, SECOND, MEMBER]}).status_code == 202
    assert emu.wait_for_invocations(timeout=10)
    assert totals == {CENTRAL: 30, SECOND: 20, MEMBER: 10}
    assert [i.event.get("target") for i in emu.invocations] == [None, CENTRAL, SECOND, MEMBER]


def test_stopping_the_emulator_stops_its_function_worker() -> None:
    started = threading.Event()
    with Emulator(functiongraph=True) as emu:
        emu.add_function(FUNCTION, lambda event, request_id: started.set())
        assert send(emu, "POST", invoke_path(), body={}).status_code == 202
        assert started.wait(timeout=10) and emu.wait_for_invocations(timeout=10)
        assert any(t.name == "emulator-functiongraph" for t in threading.enumerate())
    assert not any(t.name == "emulator-functiongraph" for t in threading.enumerate())
    assert emu.errors == []


def test_async_invoke_refusals(emu: Emulator) -> None:
    emu.add_function(FUNCTION, lambda event, request_id: None)
    unknown = FUNCTION.replace(":sysprep-guard:", ":other:")
    assert workspace_error(send(emu, "POST", invoke_path(unknown), body={})) == (404, "FSS.1051")
    assert send(emu, "POST", invoke_path(unknown), body={}).json()["error_msg"] == "Not found the function"
    in_second = send(emu, "POST", invoke_path(project=SECOND), project=SECOND, body={})  # not that project's function
    assert workspace_error(in_second) == (404, "FSS.1051")
    for malformed in ("sysprep-guard", FUNCTION.rsplit(":", 1)[0], FUNCTION.replace("urn:fss:", "urn:smn:")):
        assert workspace_error(send(emu, "POST", invoke_path(malformed), body={})) == (400, "FSS.0400")
    assert workspace_error(send(emu, "POST", invoke_path(), body=[1, 2])) == (406, "FSS.0406")
    assert workspace_error(send(emu, "POST", invoke_path(), raw=b"{not json")) == (406, "FSS.0406")

    just_fits = {"blob": "x" * (ASYNC_BODY_MAX_BYTES - len(json.dumps({"blob": ""})))}
    assert len(json.dumps(just_fits).encode()) == ASYNC_BODY_MAX_BYTES
    assert send(emu, "POST", invoke_path(), body=just_fits).status_code == 202
    too_big = {"blob": just_fits["blob"] + "x"}
    assert workspace_error(send(emu, "POST", invoke_path(), body=too_big)) == (413, "FSS.0413")

    emu.inject("invoke_async", fgs_throttled())
    assert workspace_error(send(emu, "POST", invoke_path(), body={})) == (429, "FSS.0429")
    assert emu.wait_for_invocations(timeout=10)
    assert [i.event for i in emu.invocations] == [just_fits]  # nothing refused ever ran


def test_every_new_route_checks_signatures_like_the_gateway(emu: Emulator) -> None:
    emu.add_function(FUNCTION, lambda event, request_id: None)
    wrong = Keys(FAKE_AK, "not-the-secret-key-000000000000000000000", FAKE_TOKEN)
    routes = [(ASSUME_PATH, assume_body()), (invoke_path(), {})]
    for path, body in routes:
        unsigned = requests.post(f"{emu.url}{path}", json=body, timeout=10)
        assert workspace_error(unsigned) == (401, "APIG.0301")
        assert workspace_error(send(emu, "POST", path, wrong, body=body)) == (401, "APIG.0301")
        assert workspace_error(send(emu, "POST", path, Keys("UNKNOWNAK00000000001", FAKE_SK), body=body)) == (
            401,
            "APIG.0301",
        )
    assert emu.rejected_signatures == 6
    assert emu.issued == [] and emu.invocations == []


def test_iam_and_functiongraph_are_served_only_when_asked() -> None:
    with Emulator() as plain:
        assert {r.operation for r in plain.routes} == {
            "ListDesktops",
            "ListDesktopsDetail",
            "CheckSysprepInfo",
            "ShowSysprepInfo",
            "ShowJob",
            "PublishMessage",
        }
        assert workspace_error(send(plain, "POST", ASSUME_PATH, body=assume_body())) == (404, "APIG.0101")
        plain.inject("assume", iam_refused())  # injectable before IAM is served
        plain.inject("invoke_async", fgs_throttled())
    with Emulator(iam=True, functiongraph=True) as both:
        served = {r.operation for r in both.routes}
        assert {"CreateTemporaryAccessKeyByAgency", "AsyncInvokeFunction"} <= served
        assert iam_error(send(both, "POST", ASSUME_PATH, body=assume_body())) == (403, "Forbidden")  # no such account
        assert workspace_error(send(both, "POST", invoke_path(), body={})) == (404, "FSS.1051")
        text = banner(both)
        assert "IAM" in text and "FunctionGraph" in text and both.domain_id in text


# Tags ---------------------------------------------------------------------------------------------------------


def test_both_listings_carry_tags_and_filter_by_them(emu: Emulator) -> None:
    fleet = emu.fleet
    seeded = fleet.ids()[:3]
    assert fleet.tag_seeded(seeded, "team", "blue") == 3
    fleet.tag_seeded(seeded[:1], "env", "prod")
    added = fleet.add(tags={"team": "red", "cost-center": ""})
    for detail in (False, True):
        desktops = {d["desktop_id"]: d for d in send(emu, "GET", list_path(CENTRAL, detail)).json()["desktops"]}
        assert desktops[seeded[0]]["tags"] == [{"key": "team", "value": "blue"}, {"key": "env", "value": "prod"}]
        assert desktops[seeded[1]]["tags"] == [{"key": "team", "value": "blue"}]
        assert desktops[added]["tags"] == [{"key": "team", "value": "red"}, {"key": "cost-center", "value": ""}]
        assert desktops[fleet.ids()[5]]["tags"] == []
        for tag, expected in (
            ("team=blue", seeded),
            ("team=blue,env=prod", seeded[:1]),
            ("team", [*seeded, added]),
            ("team=green", []),
        ):
            answer = send(emu, "GET", list_path(CENTRAL, detail), query=[("tag", tag)]).json()
            assert [d["desktop_id"] for d in answer["desktops"]] == expected and answer["total_count"] == len(expected)
    assert send(emu, "GET", list_path(CENTRAL, True), query=[("tag", "k=" + "v" * 254)]).status_code == 400


def test_tagging_keeps_kinds_and_stays_cheap_for_a_large_fleet() -> None:
    fleet = Fleet.seeded(100_000, seed=7)
    counts = fleet.kind_counts()
    chosen = fleet.ids()[::100]  # 1%, in listing order
    started = time.perf_counter()
    assert fleet.tag_seeded(chosen, "sweep", "1pct") == 1000
    assert [d.desktop_id for d in fleet.tagged([("sweep", "1pct")])] == chosen
    assert time.perf_counter() - started < 5
    assert fleet.kind_counts() == counts  # tags do not change what a desktop is
    compliant = next(d for d in chosen if fleet[d].kind == COMPLIANT)
    fleet.update(compliant, tags=[("sweep", "done")])
    assert fleet[compliant].kind == COMPLIANT and fleet[compliant].tags == (("sweep", "done"),)


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param([("k", "v"), ("k", "w")], id="repeated-key"),
        pytest.param({"": "v"}, id="empty-key"),
        pytest.param({"k" * 129: "v"}, id="key-over-128"),
        pytest.param({"k": "v" * 44}, id="value-over-43"),
    ],
)
def test_tags_are_held_to_the_models_limits(tags: Any) -> None:
    fleet = Fleet.seeded(3)
    with pytest.raises(ValueError):
        fleet.add(tags=tags)
    with pytest.raises(ValueError):
        fleet.update(fleet.ids()[0], tags=tags)


# Conformance with the official models -------------------------------------------------------------------------


def test_the_new_answers_and_requests_are_the_official_models(emu: Emulator) -> None:
    emu.fleet.tag_seeded(emu.fleet.ids()[:2], "team", "blue")
    emu.add_function(FUNCTION, lambda event, request_id: None)
    member = assume(emu, duration_seconds=1800, session_user={"name": "SweepUser"})
    assert send(emu, "POST", invoke_path(), body={"target": {"project_id": MEMBER}, "depth": 1}).status_code == 202
    fgs = official(FunctionGraphClient, emu, CENTRAL_KEYS, CENTRAL)
    sent = fgs.async_invoke_function(fgs_models.AsyncInvokeFunctionRequest(function_urn=FUNCTION, body={"k": "v"}))
    assert sent.status_code == 202 and sent.request_id
    send(emu, "GET", list_path(CENTRAL), query=[("limit", "5")])
    send(emu, "GET", list_path(CENTRAL, True), query=[("tag", "team=blue")])
    send(emu, "GET", list_path(MEMBER, True), member, project=MEMBER)
    assert emu.wait_for_invocations(timeout=10)

    packages = {
        "CreateTemporaryAccessKeyByAgency": iam_models,
        "AsyncInvokeFunction": fgs_models,
        "ListDesktops": workspace_models,
        "ListDesktopsDetail": workspace_models,
    }
    seen: set[str] = set()
    keys: set[str] = set()  # tag keys listed
    for exchange in emu.exchanges:
        package = packages[exchange.operation]
        answer = json.loads(exchange.answer.body)
        response = conforms(answer, f"{exchange.operation}Response", package)
        seen.add(exchange.operation)
        if exchange.operation == "CreateTemporaryAccessKeyByAgency":
            assert exchange.answer.status == 201 and set(answer["credential"]) == {
                "access",
                "secret",
                "securitytoken",
                "expires_at",
            }
            body = json.loads(exchange.request.body)
            built = conforms({"body": body}, "CreateTemporaryAccessKeyByAgencyRequest", package)
            assert built.body.auth.identity.assume_role.session_user.name == "SweepUser"
        elif exchange.operation == "AsyncInvokeFunction":
            assert exchange.answer.status == 202 and set(answer) == {"request_id"}
            (urn,) = exchange.request.params
            fields = {"function_urn": urn, "body": json.loads(exchange.request.body)}
            built = conforms(fields, "AsyncInvokeFunctionRequest", package)
            assert built.function_urn == FUNCTION and built.body == fields["body"]
        else:
            assert all(isinstance(d.tags, list) for d in response.desktops)
            keys |= {tag.key for d in response.desktops for tag in d.tags}
    assert seen == set(packages) and keys == {"team"}


def test_the_new_routes_are_where_the_sdks_call_them() -> None:
    iam_info = IamClient._create_temporary_access_key_by_agency_http_info(
        iam_models.CreateTemporaryAccessKeyByAgencyRequest()
    )
    fgs_info = FunctionGraphClient._async_invoke_function_http_info(fgs_models.AsyncInvokeFunctionRequest())
    with Emulator(iam=True, functiongraph=True) as emu:
        routes = {route.operation: route for route in emu.routes}
    for operation, info in (("CreateTemporaryAccessKeyByAgency", iam_info), ("AsyncInvokeFunction", fgs_info)):
        route = routes[operation]
        assert route.method == info["method"]
        assert route.pattern.match(re.sub(r"\{(\w+)\}", "x", info["resource_path"])), operation
    assert iam_info["resource_path"] == ASSUME_PATH
    assert fgs_info["resource_path"] == "/v2/{project_id}/fgs/functions/{function_urn}/invocations-async"
