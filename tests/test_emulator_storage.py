"""The emulator's OBS and Cloud Eye, held to Huawei's official clients and models, over real sockets.

OBS is driven by esdk-obs-python's ObsClient (the SDK the function will use) and, for the `OBS` signature scheme that
ObsClient only uses virtual-hosted, by the same SDK's signer over raw requests. CES is driven by the official
huaweicloudsdkces client: every body sent is built from the official request model. What the emulator answers for
ListObjects deserialises into huaweicloudsdkobs's ListObjectsResponse, and the operations it serves are those of the
API Explorer definitions (tests/data/huawei_api_definitions.json). No test sleeps: clocks are moved instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import types
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import huaweicloudsdkces.v1.model as ces_models
import huaweicloudsdkobs.v1.model as obs_models
import obs.client
import pytest
import requests
from huaweicloudsdkces.v1 import CesClient
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.utils.xml_utils import XmlTransfer
from huaweicloudsdkobs.v1 import ObsClient as OfficialObsClient
from obs import ObsClient
from obs.auth import Authentication
from obs.convertor import Adapter

from devkit.emulator import (
    CES_BODY_MAX_BYTES,
    FAKE_AK,
    FAKE_SK,
    FAKE_TOKEN,
    OBS_LIST_MAX,
    POINTS_MAX,
    Emulator,
    Fault,
    banner,
    obs_outage,
)
from test_conformance import deserialise, lost_fields

PROJECT = "0123456789abcdef0123456789abcdef"
REGION = "ap-southeast-1"
BUCKET = "sysprep-state"
DEFINITIONS = json.loads((Path(__file__).parent / "data" / "huawei_api_definitions.json").read_text())["services"]
NAMESPACE = "WorkspaceSysprep.compliance"  # template.yml's METRICS namespace
DAY_MS = 24 * 3600 * 1000
# The official SDKs' own clocks (Python 3.12+ deprecates utcnow): theirs to fix, not a finding of these tests.
pytestmark = [
    pytest.mark.filterwarnings(f"ignore:datetime.datetime.utcnow:DeprecationWarning:{module}")
    for module in ("obs.client", "huaweicloudsdkcore.signer.signer")
]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(project_id=PROJECT, region=REGION, buckets=[BUCKET, "sysprep-other"], ces=True, record=True) as e:
        yield e
    assert e.errors == []  # the emulator never answered 500 for a bug of its own


def obs_client(
    emu: Emulator, *, sk: str = FAKE_SK, token: str | None = FAKE_TOKEN, ak: str = FAKE_AK, **kw: Any
) -> Any:
    """ObsClient as the function configures it against the emulator (no retries unless asked: each call is one)."""
    options: dict[str, Any] = {"max_retry_count": 0, "timeout": 10, **kw}
    return ObsClient(
        access_key_id=ak,
        secret_access_key=sk,
        security_token=token,
        server=emu.url,
        path_style=True,
        signature="obs",
        is_signature_negotiation=False,
        ssl_verify=False,
        **options,
    )


@pytest.fixture
def client(emu: Emulator) -> Iterator[Any]:
    c = obs_client(emu)
    yield c
    c.close()


# OBS through the official SDK ------------------------------------------------------------------------


def test_put_get_and_list_with_the_sdk(emu: Emulator, client: Any) -> None:
    key = "sysprep-guard/runs/2026-11-28T02:00:00Z ü+.json"  # spaces, a colon, a plus and UTF-8 in the key
    put = client.putContent(BUCKET, key, content=b'{"non_compliant": 3}', metadata={"run": "timer"})
    assert put.status == 200, (put.errorCode, put.errorMessage)
    assert put.body.etag == '"' + hashlib.md5(b'{"non_compliant": 3}').hexdigest() + '"'

    got = client.getObject(BUCKET, key, loadStreamInMemory=True)
    assert got.status == 200 and got.body.buffer == b'{"non_compliant": 3}'
    assert got.body.contentType == "application/json"  # ObsClient types the object by its extension
    assert got.body.etag == put.body.etag and got.requestId and dict(got.header)["run"] == "timer"

    listed = client.listObjects(BUCKET)
    assert listed.status == 200 and listed.body is not None  # a body the SDK could not parse would be None
    (content,) = listed.body.contents
    assert (content.key, content.size, content.etag) == (key, 20, put.body.etag)
    assert listed.body.name == BUCKET and listed.body.is_truncated is False and listed.body.max_keys == 1000

    assert emu.buckets[BUCKET][key].data == b'{"non_compliant": 3}'
    assert emu.buckets["sysprep-other"] == {}
    assert emu.calls == [("obs_put", 200), ("obs_get", 200), ("obs_list", 200)]
    assert emu.rejected_signatures == 0


def test_list_by_prefix_marker_and_pages(emu: Emulator, client: Any) -> None:
    keys = [f"runs/{n:03d}.json" for n in range(25)]
    for key in keys[:3]:
        assert client.putContent(BUCKET, key, content=key).status == 200
    for key in keys[3:]:
        emu.put_object(BUCKET, key, key.encode())
    emu.put_object(BUCKET, "latest.json", b"{}")
    emu.put_object(BUCKET, "runs.txt", b"")  # shares the prefix "runs" but not "runs/"

    by_prefix = client.listObjects(BUCKET, prefix="runs/").body
    assert [c.key for c in by_prefix.contents] == keys and by_prefix.prefix == "runs/"
    after = client.listObjects(BUCKET, prefix="runs/", marker="runs/020.json").body
    assert [c.key for c in after.contents] == keys[21:] and after.marker == "runs/020.json"

    pages, marker = [], None
    while True:
        page = client.listObjects(BUCKET, prefix="runs/", marker=marker, max_keys=10).body
        pages.append([c.key for c in page.contents])
        if not page.is_truncated:
            assert page.next_marker is None
            break
        assert page.next_marker == page.contents[-1].key
        marker = page.next_marker
    assert [len(p) for p in pages] == [10, 10, 5] and [k for p in pages for k in p] == keys

    grouped = client.listObjects(BUCKET, delimiter="/").body
    assert [c.key for c in grouped.contents] == ["latest.json", "runs.txt"]
    assert [p.prefix for p in grouped.commonPrefixs] == ["runs/"]


def test_max_keys_is_at_most_1000(emu: Emulator, client: Any) -> None:
    for n in range(OBS_LIST_MAX + 1):
        emu.put_object(BUCKET, f"k/{n:05d}", b"")
    for max_keys in (None, 1001, 5000):  # OBS's definition: out of [1, 1000], the default 1000
        page = client.listObjects(BUCKET, max_keys=max_keys).body
        assert len(page.contents) == 1000 and page.max_keys == 1000 and page.is_truncated
        assert page.next_marker == "k/00999"
    rest = client.listObjects(BUCKET, marker="k/00999").body
    assert [c.key for c in rest.contents] == ["k/01000"] and not rest.is_truncated


def test_missing_bucket_and_key_are_answered_as_obs_does(emu: Emulator, client: Any) -> None:
    no_key = client.getObject(BUCKET, "sysprep-guard/nothing.json", loadStreamInMemory=True)
    assert (no_key.status, no_key.errorCode) == (404, "NoSuchKey") and no_key.requestId and no_key.hostId
    for outcome in (
        client.getObject("no-such-bucket", "a.json", loadStreamInMemory=True),
        client.putContent("no-such-bucket", "a.json", content=b"x"),
        client.listObjects("no-such-bucket"),
    ):
        assert (outcome.status, outcome.errorCode) == (404, "NoSuchBucket")
    assert emu.buckets[BUCKET] == {} and "no-such-bucket" not in emu.buckets


# OBS signatures ----------------------------------------------------------------------------------------


def test_a_wrong_secret_key_is_refused(emu: Emulator) -> None:
    wrong = obs_client(emu, sk=FAKE_SK + "x")
    for outcome in (
        wrong.putContent(BUCKET, "a.json", content=b"{}"),
        wrong.getObject(BUCKET, "a.json", loadStreamInMemory=True),
        wrong.listObjects(BUCKET),
    ):
        assert (outcome.status, outcome.errorCode) == (403, "SignatureDoesNotMatch")
    assert emu.rejected_signatures == 3 and emu.buckets[BUCKET] == {}
    assert [status for _, status in emu.calls] == [403, 403, 403]


def test_a_temporary_key_without_its_token_is_refused(emu: Emulator) -> None:
    outcome = obs_client(emu, token=None).getObject(BUCKET, "a.json", loadStreamInMemory=True)
    assert (outcome.status, outcome.errorCode) == (403, "InvalidAccessKeyId")
    assert "x-amz-security-token" in outcome.errorMessage
    wrong = obs_client(emu, token=FAKE_TOKEN + "x").listObjects(BUCKET)
    assert (wrong.status, wrong.errorCode) == (400, "InvalidToken")
    unknown = obs_client(emu, ak="UNKNOWNAK0000000000X").listObjects(BUCKET)
    assert (unknown.status, unknown.errorCode) == (403, "InvalidAccessKeyId")
    assert emu.rejected_signatures == 3


def test_a_permanent_key_signs_without_a_token() -> None:
    with Emulator(buckets=[BUCKET], keys={"PERMANENTAK000000001": ("permanent-sk", None)}) as emu:
        plain = obs_client(emu, ak="PERMANENTAK000000001", sk="permanent-sk", token=None)
        assert plain.putContent(BUCKET, "a.json", content=b"{}").status == 200
        extra = obs_client(emu, ak="PERMANENTAK000000001", sk="permanent-sk", token="a-token")
        assert extra.listObjects(BUCKET).errorCode == "InvalidToken"
        assert emu.errors == []


@pytest.mark.parametrize("offset", [16 * 60, -16 * 60])
def test_a_stale_or_future_date_is_refused(emu: Emulator, client: Any, offset: int) -> None:
    emu.clock = lambda: time.time() + offset  # the server's clock moves, not the test
    outcome = client.putContent(BUCKET, "a.json", content=b"{}")
    assert (outcome.status, outcome.errorCode) == (403, "RequestTimeTooSkewed")
    emu.clock = lambda: time.time() + offset * 14 / 16  # 14 minutes off: within OBS's 15
    assert client.putContent(BUCKET, "a.json", content=b"{}").status == 200


def test_an_unsigned_request_is_refused_and_a_stray_path_is_the_gateways(emu: Emulator) -> None:
    anonymous = requests.get(f"{emu.url}/{BUCKET}/a.json", timeout=5)
    assert anonymous.status_code == 403 and _xml_error(anonymous)[0] == "AccessDenied"
    assert anonymous.headers["x-obs-request-id"] == _xml_error(anonymous)[2] == anonymous.headers["X-Request-Id"]
    stray = requests.get(f"{emu.url}/nowhere", timeout=5)  # no bucket of this emulator, nothing of OBS's
    assert stray.status_code == 404 and stray.json()["error_code"] == "APIG.0101"


def _xml_error(answer: requests.Response) -> tuple[str, str, str, str]:
    root = ElementTree.fromstring(answer.content)
    assert root.tag == "Error" and [child.tag for child in root] == ["Code", "Message", "RequestId", "HostId"]
    code, message, request_id, host_id = (
        root.findtext(tag) or "" for tag in ("Code", "Message", "RequestId", "HostId")
    )
    return code, message, request_id, host_id


def signed_obs_request(
    emu: Emulator, method: str, key: str, body: bytes = b"", *, headers: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """A request signed with the `OBS` scheme by the SDK's own signer (what ObsClient sends virtual-hosted)."""
    sent = {"Date": formatdate(time.time(), usegmt=True), "x-obs-security-token": FAKE_TOKEN, **(headers or {})}
    if body:
        sent["Content-Type"] = "application/json"
    adapter = Adapter("obs")
    signed = Authentication(FAKE_AK, FAKE_SK, True, adapter, emu.url, False).doAuth(method, BUCKET, key, {}, sent)
    return f"{emu.url}/{BUCKET}/{key}", {**sent, "Authorization": signed["Authorization"]}


def test_the_obs_signature_scheme_is_verified_as_well(emu: Emulator) -> None:
    body = b'{"run": 1}'
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    url, headers = signed_obs_request(emu, "PUT", "obs-scheme.json", body, headers={"Content-MD5": md5})
    assert headers["Authorization"].startswith(f"OBS {FAKE_AK}:")
    assert requests.put(url, data=body, headers=headers, timeout=5).status_code == 200
    assert emu.buckets[BUCKET]["obs-scheme.json"].data == body

    tampered = requests.put(url, data=b'{"run": 2}', headers=headers, timeout=5)  # Content-MD5 was signed
    assert tampered.status_code == 400 and _xml_error(tampered)[0] == "BadDigest"
    retyped = requests.put(url, data=body, headers={**headers, "Content-Type": "text/plain"}, timeout=5)
    assert retyped.status_code == 403 and _xml_error(retyped)[0] == "SignatureDoesNotMatch"
    url, headers = signed_obs_request(emu, "GET", "obs-scheme.json")
    assert requests.get(url, headers=headers, timeout=5).content == body
    elsewhere = requests.get(url.replace("obs-scheme.json", "other.json"), headers=headers, timeout=5)
    assert elsewhere.status_code == 403 and _xml_error(elsewhere)[0] == "SignatureDoesNotMatch"
    assert emu.buckets[BUCKET]["obs-scheme.json"].data == body  # nothing refused was stored


# OBS faults --------------------------------------------------------------------------------------------


def test_an_obs_outage_is_observable(emu: Emulator, client: Any) -> None:
    emu.inject("obs_put", obs_outage())
    outcome = client.putContent(BUCKET, "a.json", content=b"{}")
    assert (outcome.status, outcome.errorCode) == (503, "ServiceUnavailable") and outcome.requestId
    assert emu.buckets[BUCKET] == {}
    assert client.putContent(BUCKET, "a.json", content=b"{}").status == 200  # used up

    emu.inject("any", obs_outage(), times=2)
    assert client.listObjects(BUCKET).status == 503
    assert client.getObject(BUCKET, "a.json", loadStreamInMemory=True).status == 503
    assert emu.calls == [("obs_put", 503), ("obs_put", 200), ("obs_list", 503), ("obs_get", 503)]


def test_the_sdk_retries_through_a_short_outage_without_sleeping(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    fake_time = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if not n.startswith("_")})
    fake_time.sleep = sleeps.append
    monkeypatch.setattr(obs.client, "time", fake_time)  # ObsClient's back-off between attempts
    emu.inject("obs_get", obs_outage(), times=2)
    emu.put_object(BUCKET, "a.json", b"{}")
    retrying = obs_client(emu, max_retry_count=2)
    assert retrying.getObject(BUCKET, "a.json", loadStreamInMemory=True).body.buffer == b"{}"
    assert emu.calls == [("obs_get", 503), ("obs_get", 503), ("obs_get", 200)] and sleeps == [0.2, 0.4]


def test_gateway_faults_apply_to_obs_kinds_too(emu: Emulator, client: Any) -> None:
    emu.inject("obs_list", Fault.throttled())
    assert client.listObjects(BUCKET).status == 429
    emu.inject("obs_get", Fault.dropped())
    with pytest.raises(ConnectionError):  # no answer at all: the SDK raises what http.client raised
        client.getObject(BUCKET, "a.json", loadStreamInMemory=True)
    assert emu.calls == [("obs_list", 429), ("obs_get", 0)]


def test_obs_and_ces_are_served_only_when_asked() -> None:
    with Emulator() as plain:
        assert {r.kind for r in plain.routes} == {"list", "detail", "sysprep", "show", "job", "publish"}
        assert plain.buckets == {} and plain.obs is None and plain.ces is None
        with pytest.raises(ValueError, match="kind"):
            plain.inject("obs_put", obs_outage())
    with pytest.raises(ValueError, match="bucket names"):
        Emulator(buckets=["Sysprep_State"])


# Cloud Eye ---------------------------------------------------------------------------------------------


@pytest.fixture
def ces(emu: Emulator) -> CesClient:
    """The official Cloud Eye client, pointed at the emulator, its clock fixed (collect_time is checked against it)."""
    now = float(int(time.time()))
    emu.clock = lambda: now
    credentials = BasicCredentials(FAKE_AK, FAKE_SK, PROJECT).with_security_token(FAKE_TOKEN)
    config = HttpConfig.get_default_config()
    config.timeout = (5, 10)
    return official_ces(emu, credentials, config)


def official_ces(emu: Emulator, credentials: BasicCredentials, config: HttpConfig | None = None) -> CesClient:
    builder = CesClient.new_builder().with_credentials(credentials).with_endpoints([emu.url])
    return builder.with_http_config(config or HttpConfig.get_default_config()).build()


def ces_error(err: pytest.ExceptionInfo[ClientRequestException]) -> tuple[int, str]:
    """The status and CES's error code of a refusal, from CES's v1 error body."""
    body = json.loads(err.value.error_msg)
    assert body["http_code"] == str(err.value.status_code) and set(body["message"]) == {"details", "code"}
    return err.value.status_code, body["message"]["code"]


def point(emu: Emulator, **changes: Any) -> dict[str, Any]:
    """One data point as the function will send it; `metric_*` keys change the metric."""
    metric: dict[str, Any] = {
        "namespace": NAMESPACE,
        "metric_name": "non_compliant",
        "dimensions": [{"name": "project_id", "value": PROJECT}],
    }
    metric.update({k[len("metric_") :]: v for k, v in changes.items() if k.startswith("metric_")})
    data = {
        "metric": metric,
        "ttl": 604800,
        "collect_time": int(emu.clock() * 1000),
        "value": 3,
        "unit": "count",
        "type": "int",
    }
    data.update({k: v for k, v in changes.items() if not k.startswith("metric_")})
    return data


def send_metrics(ces: CesClient, body: list[dict[str, Any]]) -> Any:
    """Send through the official client a body built from the official request model, field for field."""
    fields = {"body": body}
    assert list(lost_fields(fields, "CreateMetricDataRequest", ces_models)) == []
    request = deserialise(fields, "CreateMetricDataRequest", ces_models)
    sent = [{k: v for k, v in item.to_dict().items() if v is not None} for item in request.body]
    for item in sent:
        item["metric"]["dimensions"] = [dict(d) for d in item["metric"]["dimensions"]]
    assert sent == body  # what the SDK sends is the body, nothing lost or added
    return ces.create_metric_data(request)


def test_ces_accepts_a_valid_batch_and_records_its_points(emu: Emulator, ces: CesClient) -> None:
    now_ms = int(emu.clock() * 1000)
    body = [
        point(emu),
        point(emu, metric_metric_name="compliant", value=120.5, type="float", unit="count"),
        point(emu, metric_dimensions=[{"name": f"d{n}", "value": f"v-{n}.x/#()"} for n in range(4)]),
        point(emu, collect_time=now_ms - 3 * DAY_MS, ttl=1),  # the window's edges, inclusive
        point(emu, collect_time=now_ms + 10 * 60 * 1000),
        {k: v for k, v in point(emu).items() if k not in ("unit", "type")},  # unit and type are optional
    ]
    answer = send_metrics(ces, body)
    assert answer.status_code == 201 and not answer.to_json_object()
    (exchange,) = emu.exchanges
    assert exchange.operation == "CreateMetricData" and exchange.answer.body == b""  # 201, no body
    assert len(emu.metrics) == 6 and emu.calls == [("ces", 201)]
    first = emu.metrics[0]
    assert (first.namespace, first.metric_name, first.dimensions) == (
        NAMESPACE,
        "non_compliant",
        (("project_id", PROJECT),),
    )
    assert (first.value, first.unit, first.type, first.ttl) == (3, "count", "int", 604800)
    assert emu.metrics[1].value == 120.5 and len(emu.metrics[2].dimensions) == 4
    deserialise({}, "CreateMetricDataResponse", ces_models)  # the empty answer is the official (empty) model


VIOLATIONS = [
    pytest.param({"metric_namespace": "WorkspaceSysprep"}, 400, "ces.0014", id="namespace-without-item"),
    pytest.param({"metric_namespace": "Workspace.Sysprep.x"}, 400, "ces.0014", id="namespace-two-dots"),
    pytest.param({"metric_namespace": "1ws.compliance"}, 400, "ces.0014", id="namespace-digit-first"),
    pytest.param({"metric_namespace": "ws.compli-ance"}, 400, "ces.0014", id="namespace-hyphen"),
    pytest.param({"metric_namespace": "W" * 16 + "." + "c" * 16}, 400, "ces.0014", id="namespace-33"),
    pytest.param({"metric_namespace": "SYS.ECS"}, 403, "ces.0009", id="namespace-SYS"),
    pytest.param({"metric_namespace": "AGT.custom"}, 403, "ces.0009", id="namespace-AGT"),
    pytest.param({"metric_namespace": "SREbox.custom"}, 403, "ces.0009", id="namespace-SRE"),
    pytest.param({"metric_metric_name": "2fast"}, 400, "ces.0014", id="metric-name-digit-first"),
    pytest.param({"metric_metric_name": "non.compliant"}, 400, "ces.0014", id="metric-name-dot"),
    pytest.param({"metric_metric_name": "m" * 97}, 400, "ces.0014", id="metric-name-97"),
    pytest.param({"metric_dimensions": []}, 400, "ces.0014", id="no-dimension"),
    pytest.param(
        {"metric_dimensions": [{"name": f"d{n}", "value": "v"} for n in range(5)]}, 400, "ces.0014", id="5-dims"
    ),
    pytest.param({"metric_dimensions": [{"name": "_id", "value": "v"}]}, 400, "ces.0014", id="dim-name"),
    pytest.param({"metric_dimensions": [{"name": "d" * 33, "value": "v"}]}, 400, "ces.0014", id="dim-name-33"),
    pytest.param({"metric_dimensions": [{"name": "id", "value": "-v"}]}, 400, "ces.0014", id="dim-value"),
    pytest.param({"metric_dimensions": [{"name": "id", "value": "a b"}]}, 400, "ces.0014", id="dim-value-space"),
    pytest.param({"metric_dimensions": [{"name": "id", "value": "v" * 257}]}, 400, "ces.0014", id="dim-257"),
    pytest.param({"ttl": 0}, 400, "ces.0014", id="ttl-0"),
    pytest.param({"ttl": 604801}, 400, "ces.0014", id="ttl-over-7-days"),
    pytest.param({"collect_time": lambda now: now - 3 * DAY_MS - 1}, 400, "ces.0014", id="collected-3-days-ago"),
    pytest.param({"collect_time": lambda now: now + 10 * 60 * 1000 + 1}, 400, "ces.0014", id="collected-in-11-min"),
    pytest.param({"collect_time": lambda now: now // 1000}, 400, "ces.0014", id="collect-time-in-seconds"),
    pytest.param({"unit": "u" * 33}, 400, "ces.0014", id="unit-33"),
    pytest.param({"type": "double"}, 400, "ces.0014", id="type"),
]


@pytest.mark.parametrize(("changes", "status", "code"), VIOLATIONS)
def test_ces_refuses_each_documented_violation(
    emu: Emulator, ces: CesClient, changes: dict[str, Any], status: int, code: str
) -> None:
    now_ms = int(emu.clock() * 1000)  # a collect_time is relative to the emulator's (fixed) clock
    changes = {k: v(now_ms) if callable(v) else v for k, v in changes.items()}
    with pytest.raises(ClientRequestException) as err:
        send_metrics(ces, [point(emu), point(emu, **changes)])
    assert ces_error(err) == (status, code)
    assert emu.metrics == []  # one bad point refuses the batch


def test_ces_refuses_an_empty_or_oversized_batch(emu: Emulator, ces: CesClient) -> None:
    with pytest.raises(ClientRequestException) as err:
        send_metrics(ces, [])
    assert ces_error(err) == (400, "ces.0014")
    wide = point(emu, metric_dimensions=[{"name": f"d{n}", "value": "v" * 256} for n in range(4)])
    fitting = CES_BODY_MAX_BYTES // len(json.dumps(wide, separators=(",", ":")))
    assert fitting < POINTS_MAX  # 10,000 points (the array's maxItems) never fit in 512 KB
    assert send_metrics(ces, [wide] * (fitting // 2)).status_code == 201
    with pytest.raises(ClientRequestException) as err:
        send_metrics(ces, [wide] * (fitting + 1))
    assert ces_error(err) == (413, "ces.0014") and emu.calls[-1] == ("ces", 413)
    assert len(emu.metrics) == fitting // 2


def test_ces_sits_behind_the_gateway(emu: Emulator, ces: CesClient) -> None:
    unsigned = requests.post(f"{emu.url}/V1.0/{PROJECT}/metric-data", json=[point(emu)], timeout=5)
    assert unsigned.status_code == 401 and unsigned.json()["error_code"] == "APIG.0301"
    other = official_ces(emu, BasicCredentials(FAKE_AK, FAKE_SK, "f" * 32).with_security_token(FAKE_TOKEN))
    with pytest.raises(ClientRequestException) as err:
        send_metrics(other, [point(emu)])
    assert ces_error(err) == (403, "ces.0017")
    emu.inject("ces", Fault.throttled())
    with pytest.raises(ClientRequestException) as err:
        send_metrics(ces, [point(emu)])
    assert err.value.status_code == 429 and emu.calls[-1] == ("ces", 429)  # the gateway's throttling answer
    assert send_metrics(ces, [point(emu)]).status_code == 201
    assert emu.rejected_signatures == 1 and len(emu.metrics) == 1


# Conformance: the definitions and the official models --------------------------------------------------


def test_the_emulator_serves_ces_and_obs_at_their_official_methods_and_paths(emu: Emulator) -> None:
    routes = {r.operation: r for r in emu.routes if r.kind == "ces" or r.kind.startswith("obs_")}
    assert set(routes) == set(DEFINITIONS["CES"]) | set(DEFINITIONS["OBS"])
    for operation, route in routes.items():
        service = "CES" if route.kind == "ces" else "OBS"
        official = DEFINITIONS[service][operation]
        if service == "CES":
            info = CesClient._create_metric_data_http_info(ces_models.CreateMetricDataRequest())
            path = official["path"]
        else:
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
            request = getattr(obs_models, f"{operation}Request")()
            info = getattr(OfficialObsClient, f"_{snake}_http_info")(request)
            path = "/{bucket_name}" + official["path"].rstrip("/")  # path-style: the bucket first
        assert (info["method"], info["resource_path"]) == (official["method"], official["path"]), operation
        assert route.method == official["method"], operation
        concrete = re.sub(r"\{(\w+)\}", lambda m: BUCKET if m.group(1) == "bucket_name" else "x", path)
        assert route.pattern.match(concrete), f"{operation}: the emulator does not serve {path}"
    assert DEFINITIONS["CES"]["CreateMetricData"]["iam_action"] == "ces:metricData:create"
    assert {op: d["iam_action"] for op, d in DEFINITIONS["OBS"].items()} == {
        "PutObject": "obs:object:PutObject",
        "GetObject": "obs:object:GetObject",
        "ListObjects": "obs:bucket:ListBucket",
    }


def typed(data: Any, kind: str, package: Any) -> Any:
    """XML text as the model's types: repeated elements are lists, booleans are exactly `true` or `false`."""
    if kind.startswith("list["):
        items = data if isinstance(data, list) else [data]
        return [typed(item, kind[5:-1], package) for item in items]
    if kind == "bool":
        assert data in ("true", "false"), data
        return data == "true"
    if kind == "int":
        return int(data)
    if not hasattr(package, kind) or not isinstance(data, dict):
        return data
    model = getattr(package, kind)
    wire = {name: attr for attr, name in model.attribute_map.items()}
    return {k: typed(v, model.openapi_types[wire[k]], package) if k in wire else v for k, v in data.items()}


def test_list_objects_answers_hold_to_the_official_model(emu: Emulator, client: Any) -> None:
    for n in range(3):
        emu.put_object(BUCKET, f"runs/{n}.json", b"{}")
    emu.put_object(BUCKET, "a&b<c>.json", b"x")  # XML's special characters, escaped
    for query in ({}, {"prefix": "runs/", "max_keys": 2}, {"delimiter": "/"}, {"marker": "runs/0.json"}):
        assert client.listObjects(BUCKET, **query).status == 200
    listings = [e for e in emu.exchanges if e.operation == "ListObjects"]
    assert len(listings) == 4
    for exchange in listings:
        for key, _ in exchange.request.query:  # what ObsClient sent are fields of the official request
            assert key in obs_models.ListObjectsRequest.attribute_map.values(), key
        root = ElementTree.fromstring(exchange.answer.body)
        assert root.tag == f"{{http://obs.{REGION}.myhuaweicloud.com/doc/2015-06-30/}}ListBucketResult"
        data = XmlTransfer().to_dict(exchange.answer.body, ignore_root=True)
        data.pop("xmlns", None)  # the namespace, kept as an attribute by the SDK's parser
        data.update({h: exchange.answer.headers[h] for h in ("x-obs-request-id", "x-obs-id-2")})
        data = typed(data, "ListObjectsResponse", obs_models)
        assert list(lost_fields(data, "ListObjectsResponse", obs_models)) == []
        parsed = deserialise(data, "ListObjectsResponse", obs_models)
        assert parsed.name == BUCKET and parsed.max_keys and parsed.is_truncated is not None
        for content in parsed.contents or []:
            assert content.key and content.e_tag and content.size.isdigit() and content.owner.id
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", content.last_modified)
    truncated = typed(XmlTransfer().to_dict(listings[1].answer.body, True), "ListObjectsResponse", obs_models)
    assert truncated["IsTruncated"] is True and truncated["NextMarker"] == "runs/1.json"
    assert [c["Key"] for c in truncated["Contents"]] == ["runs/0.json", "runs/1.json"]
    grouped = typed(XmlTransfer().to_dict(listings[2].answer.body, True), "ListObjectsResponse", obs_models)
    assert grouped["CommonPrefixes"] == [{"Prefix": "runs/"}] and grouped["Contents"][0]["Key"] == "a&b<c>.json"


def test_a_field_the_model_lacks_is_caught() -> None:
    answer = {"Name": BUCKET, "IsTruncated": False, "Contents": [{"Key": "k", "Checksum": "x"}]}
    assert list(lost_fields(answer, "ListObjectsResponse", obs_models)) == [
        "Contents[0].Checksum: not a field of Contents"
    ]


# The banner -------------------------------------------------------------------------------------------


def test_the_banner_names_the_buckets_and_cloud_eye(emu: Emulator) -> None:
    text = banner(emu)
    assert f"OBS buckets  {BUCKET}, sysprep-other" in text and "path_style=True" in text  # in the order given
    assert "Cloud Eye    custom metrics" in text
    assert f"ENDPOINTS={emu.url} STATE_BUCKET={BUCKET} METRICS=true" in text
    with Emulator() as plain:
        assert "OBS          not served" in banner(plain) and "Cloud Eye    not served" in banner(plain)
