"""The signed client: retries, errors an operator can act on, deadlines, size caps, no secret leaks."""

from __future__ import annotations

import pytest
import requests
import responses

from conftest import FAKE_AK, FAKE_SK, FAKE_TOKEN, PROJECT, WORKSPACE, FakeClock
from sysprep_guard.client import MAX_ANSWER_BYTES, Credentials, RetryPolicy, SignedClient
from sysprep_guard.errors import ApiError
from sysprep_guard.timing import Deadline

URL = f"{WORKSPACE}/v2/{PROJECT}/sysprep"
THROTTLED = {"error_code": "APIG.0308", "error_msg": "The throttling threshold has been reached", "request_id": "g1"}


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(fake_clock: FakeClock) -> SignedClient:
    client = SignedClient(PROJECT, clock=fake_clock, retry=RetryPolicy(attempts=4, base=0.5, cap=8.0))
    client.begin(Credentials(FAKE_AK, FAKE_SK, FAKE_TOKEN), Deadline.after(fake_clock, 300))
    return client


def post(client: SignedClient, keep: float = 0.0) -> object:
    return client.call(
        "workspace CheckSysprepInfo",
        "POST",
        WORKSPACE,
        f"/v2/{PROJECT}/sysprep",
        body={"desktop_ids": ["x"]},
        keep=keep,
    )


def test_throttling_and_5xx_are_retried_with_bounded_jittered_backoff(cloud, client, fake_clock) -> None:
    cloud.add(responses.POST, URL, status=429, json=THROTTLED)
    cloud.add(responses.POST, URL, status=503, body="")
    cloud.add(responses.POST, URL, json={"sysprep_infos": []})
    assert post(client) == {"sysprep_infos": []}
    assert len(cloud.calls) == 3
    assert len(fake_clock.sleeps) == 2
    assert 0 <= fake_clock.sleeps[0] <= 0.5 and 0 <= fake_clock.sleeps[1] <= 1.0


def test_retries_stop_after_the_last_attempt_with_the_last_error(cloud, client) -> None:
    cloud.add(responses.POST, URL, status=429, json=THROTTLED)
    with pytest.raises(ApiError) as err:
        post(client)
    assert len(cloud.calls) == 4
    assert (err.value.status, err.value.code, err.value.request_id) == (429, "APIG.0308", "g1")
    assert "workspace CheckSysprepInfo" in str(err.value)


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (400, {"error_code": "WKS.0001", "error_msg": "bad ids"}, "WKS.0001"),
        (401, {"error_code": "APIG.0301", "error_msg": "Incorrect IAM authentication information"}, "APIG.0301"),
        (
            403,
            {"error_code": "WKS.0403", "error_msg": "Policy doesn't allow workspace:desktops:getSysPrepInfo"},
            "WKS.0403",
        ),
        (404, {"request_id": "s1", "code": "SMN.00010", "message": "topic not found"}, "SMN.00010"),
    ],
)
def test_client_errors_are_never_retried(cloud, client, status, body, code) -> None:
    cloud.add(responses.POST, URL, status=status, json=body, headers={"X-Request-Id": "req-42"})
    with pytest.raises(ApiError) as err:
        post(client)
    assert len(cloud.calls) == 1  # a 401 retried is a step toward the gateway locking the key
    assert (err.value.status, err.value.code, err.value.request_id) == (status, code, "req-42")
    assert err.value.refused is (status in (401, 403))


def test_an_html_gateway_page_becomes_a_readable_error(cloud, client) -> None:
    cloud.add(responses.POST, URL, status=502, body="<html><body><h1>502 Bad Gateway</h1></body></html>")
    with pytest.raises(ApiError) as err:
        post(client)
    assert len(cloud.calls) == 4
    # Described, not copied: a body beyond the documented error fields could echo anything back.
    assert str(err.value).endswith("HTTP 502: unexpected answer (text/plain, 50 bytes)")


def test_a_200_that_is_not_json_is_an_error_not_an_empty_success(cloud, client) -> None:
    cloud.add(responses.POST, URL, body="<html>maintenance</html>")
    with pytest.raises(ApiError, match="not JSON"):
        post(client)
    assert len(cloud.calls) == 1


def test_lost_connections_are_retried(cloud, client) -> None:
    cloud.add(responses.POST, URL, body=requests.ConnectionError("reset"))
    cloud.add(responses.POST, URL, body=requests.ReadTimeout("slow"))
    cloud.add(responses.POST, URL, json={"sysprep_infos": []})
    assert post(client) == {"sysprep_infos": []}
    assert len(cloud.calls) == 3


def test_no_call_starts_when_the_deadline_is_too_close(cloud, client, fake_clock) -> None:
    fake_clock.t += 295
    with pytest.raises(ApiError) as err:
        post(client, keep=10)
    assert err.value.out_of_time and len(cloud.calls) == 0


def test_backoff_never_sleeps_past_the_deadline(cloud, client, fake_clock) -> None:
    cloud.add(responses.POST, URL, status=503, body="")
    client.retry = RetryPolicy(attempts=50, base=1, cap=60)
    with pytest.raises(ApiError):
        post(client, keep=10)
    assert fake_clock.t <= 1000 + 300 - 10


def test_answers_over_the_cap_are_refused(cloud, client) -> None:
    cloud.add(responses.POST, URL, body=b"[" + b"0," * (MAX_ANSWER_BYTES // 2) + b"0]")
    with pytest.raises(ApiError, match="larger than"):
        post(client)


def test_an_error_body_echoing_a_secret_never_carries_it(cloud, client) -> None:
    echoed = f"bad request: Authorization: SDK-HMAC-SHA256 Access={FAKE_AK} token {FAKE_TOKEN} sk {FAKE_SK}"
    cloud.add(responses.POST, URL, status=400, json={"error_code": "X", "error_msg": echoed})
    with pytest.raises(ApiError) as err:
        post(client)
    for secret in (FAKE_AK, FAKE_SK, FAKE_TOKEN):
        assert secret not in str(err.value) and secret not in err.value.short


def test_tls_verification_stays_on(client) -> None:
    assert client.session.verify is True


def test_the_signature_is_the_one_the_official_credentials_make(client) -> None:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest

    url, headers, data = client.sign(
        "POST", WORKSPACE, f"/v2/{PROJECT}/sysprep", query=[("b", 2), ("a", "x y")], body={"desktop_ids": ["é"]}
    )
    official = SdkRequest(
        method="POST",
        schema="https",
        host=WORKSPACE.removeprefix("https://"),
        resource_path=f"/v2/{PROJECT}/sysprep",
        query_params=[("b", "2"), ("a", "x y")],
        header_params={"Content-Type": "application/json;charset=UTF-8", "X-Sdk-Date": headers["X-Sdk-Date"]},
        body=data,
    )
    creds = BasicCredentials(FAKE_AK, FAKE_SK, PROJECT).with_security_token(FAKE_TOKEN)
    signed = creds.sign_request(official)
    assert headers["Authorization"] == signed.header_params["Authorization"]
    assert url == f"{WORKSPACE}{signed.uri}"


def test_proxies_and_ca_bundle_come_from_the_environment_once(client, monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    settings = client._settings_for(WORKSPACE)
    assert settings == {"proxies": {"https": "http://proxy.internal.example:3128"}, "verify": "/etc/ssl/corporate.pem"}
    monkeypatch.delenv("HTTPS_PROXY")
    assert client._settings_for(WORKSPACE) is settings  # read once per endpoint, not per call


def test_a_netrc_never_replaces_the_signature(cloud, client, tmp_path, monkeypatch) -> None:
    (tmp_path / ".netrc").write_text(f"machine {WORKSPACE.removeprefix('https://')} login user password pass\n")
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    cloud.add(responses.POST, URL, json={"sysprep_infos": []})
    post(client)
    assert cloud.calls[0].request.headers["Authorization"].startswith("SDK-HMAC-SHA256 ")


def test_a_secret_echoed_across_the_cut_of_an_error_snippet_is_still_scrubbed(cloud, client) -> None:
    body = "<html>" + "x" * 100 + f"token={FAKE_TOKEN} ak={FAKE_AK}</html>"  # the cut at 120 falls inside the token
    cloud.add(responses.POST, URL, status=400, body=body)
    with pytest.raises(ApiError) as err:
        post(client)
    assert FAKE_TOKEN[:8] not in str(err.value) and FAKE_AK[:8] not in str(err.value)


def test_an_answer_announced_over_the_cap_is_refused_unread(cloud, client) -> None:
    cloud.add(
        responses.POST,
        URL,
        body=b"{}",
        headers={"Content-Length": str(MAX_ANSWER_BYTES + 1)},
        auto_calculate_content_length=False,
    )
    with pytest.raises(ApiError, match="refused unread"):
        post(client)


def test_a_trickling_answer_is_cut_off_before_the_deadline(monkeypatch) -> None:
    """Over a real socket: a server that sends its announced body one byte at a time never trips a read
    timeout; the client must stop on its own clock."""
    import socket
    import threading
    import time

    from sysprep_guard import client as client_module
    from sysprep_guard.timing import Clock

    monkeypatch.setattr(client_module, "MIN_ATTEMPT_SECONDS", 0.05)
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
            while not stop.wait(0.05):
                try:
                    connection.sendall(b" ")
                except OSError:
                    return

    threading.Thread(target=trickle, daemon=True).start()
    clock = Clock()
    client = SignedClient(PROJECT, clock=clock, retry=RetryPolicy(attempts=1))
    client.begin(Credentials(FAKE_AK, FAKE_SK, FAKE_TOKEN), Deadline.after(clock, 0.9))
    started = time.monotonic()
    try:
        with pytest.raises(ApiError, match="no complete answer in time"):
            client.call("trickle", "GET", f"http://127.0.0.1:{server.getsockname()[1]}", "/v2/p/desktops")
        assert time.monotonic() - started < 0.9
    finally:
        stop.set()
        server.close()


def test_invocations_served_concurrently_keep_their_own_keys(fake_clock) -> None:
    import contextvars

    client = SignedClient(PROJECT, clock=fake_clock)

    def sign_as(ak: str) -> str:
        client.begin(Credentials(ak, FAKE_SK), Deadline.after(fake_clock, 60))
        return client.sign("GET", WORKSPACE, f"/v2/{PROJECT}/desktops")[1]["Authorization"]

    first, second = contextvars.copy_context(), contextvars.copy_context()
    assert f"Access={FAKE_AK}1," in first.run(sign_as, FAKE_AK + "1")
    assert f"Access={FAKE_AK}2," in second.run(sign_as, FAKE_AK + "2")
    assert f"Access={FAKE_AK}1," in first.run(lambda: client.sign("GET", WORKSPACE, "/x")[1]["Authorization"])
