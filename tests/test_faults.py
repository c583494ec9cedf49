"""Fault injection over real sockets: whatever the emulator does, every desktop is accounted for, findings
reach SMN or the invocation fails, the deadline holds and no secret leaks."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests import conftest
from tests.conftest import load_event

import index
from devkit.context import Context
from devkit.emulator import BUILDING, FAKE_AK, FAKE_SK, FAKE_TOKEN, Emulator, Fault, Fleet, topic_urn
from sysprep_guard import client as client_module
from sysprep_guard.client import RetryPolicy, SignedClient
from sysprep_guard.errors import DeliveryError

FLEET = 350  # four sysprep batches; the first goes alone
FAST_RETRY = RetryPolicy(attempts=4, base=0.01, cap=0.05)  # the same policy, without real seconds of backoff

Run = Callable[..., dict[str, Any]]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    fleet = Fleet.seeded(FLEET, seed=7)
    with Emulator(fleet=fleet, topics=[topic_urn("ap-southeast-1", "0123456789abcdef0123456789abcdef")]) as emu:
        yield emu


@pytest.fixture
def run(emu: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    monkeypatch.setattr(index, "SignedClient", functools.partial(SignedClient, retry=FAST_RETRY))
    captured: list[str] = []

    def invoke(event: Any, timeout: float = 60, **settings: str) -> dict[str, Any]:
        user_data = {
            "REGION": "ap-southeast-1",
            "PROJECT_ID": emu.project_id,
            "SMN_TOPIC_URN": emu.topic,
            "ENDPOINTS": emu.url,
            "MIN_SYSPREP_VERSION": "3.0.10",
            **settings,
        }
        context = Context(
            user_data, access_key=FAKE_AK, secret_key=FAKE_SK, security_token=FAKE_TOKEN, timeout_seconds=timeout
        )
        try:
            summary = index.handler(event, context)
        except Exception as exc:
            captured.append(str(exc))
            raise
        captured.append(json.dumps(summary))
        return summary

    yield invoke
    logs = capsys.readouterr().out
    assert all(json.loads(line)["request_id"] for line in logs.splitlines())  # worker threads' lines too
    captured.append(logs)
    captured.extend(p.subject + json.dumps(p.body) for p in emu.published)
    for text in captured:  # keys, tokens and signatures never reach logs, summaries, errors or notifications
        for secret in (FAKE_AK, FAKE_SK, FAKE_TOKEN, "SDK-HMAC-SHA256", "Signature="):
            assert secret not in text


def accounted(summary: dict[str, Any]) -> int:
    return conftest.accounted(summary) + (summary["unlisted"] or 0)


def notified(emu: Emulator, summary: dict[str, Any]) -> None:
    """Every non-compliant and unchecked desktop is in the notification."""
    text = "".join(p.message or "" for p in emu.published)
    for entry in [*summary["non_compliant"], *summary["unchecked"]]:
        assert entry["desktop_id"] in text


def sweep(run: Run, **settings: str) -> dict[str, Any]:
    return run(load_event("timer.json"), **settings)


@pytest.mark.parametrize("fault", [Fault.throttled(), Fault.unavailable(), Fault.server_error(), Fault.dropped()])
def test_passing_faults_are_retried_and_nothing_is_lost(run: Run, emu: Emulator, fault: Fault) -> None:
    emu.inject("sysprep", fault, times=2)
    emu.inject("list", fault, times=1)
    summary = sweep(run)
    assert accounted(summary) == FLEET and summary["incomplete"] is False
    assert {u["reason"] for u in summary["unchecked"]} == {"not_ready"}
    assert len(summary["unchecked"]) == len(emu.fleet.ids(BUILDING))
    notified(emu, summary)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.throttled(), "APIG.0308: The throttling threshold has been reached"),
        (Fault.bad_gateway(), "HTTP 502: unexpected answer (text/html, 150 bytes)"),
        (Fault.dropped(), "error: connection failed"),
    ],
)
def test_a_batch_that_keeps_failing_is_unchecked_with_the_reason(
    run: Run, emu: Emulator, fault: Fault, reason: str
) -> None:
    emu.inject("sysprep", fault, times=4)  # every try of the first batch, which goes alone
    summary = sweep(run)
    assert accounted(summary) == FLEET
    failed = [u for u in summary["unchecked"] if u["reason"] != "not_ready"]
    assert len(failed) == 100 and all(u["reason"].startswith(reason) for u in failed)
    assert summary["checked"] == FLEET - 100 - len(emu.fleet.ids(BUILDING))
    notified(emu, summary)


@pytest.mark.parametrize("fault", [Fault.not_json(), Fault.wrong_shape()])
def test_a_malformed_200_is_an_error_for_its_batch_never_compliant(run: Run, emu: Emulator, fault: Fault) -> None:
    emu.inject("sysprep", fault)
    summary = sweep(run)
    assert accounted(summary) == FLEET
    failed = [u for u in summary["unchecked"] if u["reason"] != "not_ready"]
    assert len(failed) == 100
    assert Counter_of(emu, "sysprep")[200] == 4  # not retried: the same call would get the same answer
    notified(emu, summary)


def Counter_of(emu: Emulator, kind: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for k, status in emu.calls:
        if k == kind:
            counts[status] = counts.get(status, 0) + 1
    return counts


@pytest.mark.parametrize("status", [400, 404])
def test_client_errors_are_not_retried(run: Run, emu: Emulator, status: int) -> None:
    emu.inject("sysprep", Fault.answer(status, {"error_code": "WKS.0001", "error_msg": "refused"}))
    summary = sweep(run)
    assert accounted(summary) == FLEET
    assert Counter_of(emu, "sysprep")[status] == 1
    assert sum(u["reason"] == "WKS.0001: refused" for u in summary["unchecked"]) == 100


def test_a_missing_permission_costs_one_call_and_is_reported(run: Run, emu: Emulator) -> None:
    denied = {"error_code": "WKS.0403", "error_msg": "Policy doesn't allow workspace:desktops:getSysPrepInfo"}
    emu.inject("sysprep", Fault.answer(403, denied), times=1000)
    summary = run({"desktop_ids": emu.fleet.ids()[:300]}, MAX_CONCURRENCY="16")
    assert Counter_of(emu, "sysprep") == {403: 1}
    assert accounted(summary) == 300 and summary["checked"] == 0
    assert "grants workspace:desktops:getSysPrepInfo" in summary["errors"][0]
    notified(emu, summary)


def test_a_missing_permission_to_read_desktop_state_costs_one_call_and_is_reported(run: Run, emu: Emulator) -> None:
    denied = {"error_code": "WKS.0403", "error_msg": "Policy doesn't allow workspace:desktops:listDetail"}
    emu.inject("detail", Fault.answer(403, denied), times=1000)
    summary = run({"desktop_ids": emu.fleet.ids()[:300]}, MAX_CONCURRENCY="16")
    assert Counter_of(emu, "detail") == {403: 1} and Counter_of(emu, "sysprep") == {}
    assert accounted(summary) == 300 and summary["checked"] == 0 and summary["non_compliant"] == []
    assert "grants workspace:desktops:listDetail" in summary["errors"][0]
    notified(emu, summary)


def test_a_rejected_key_costs_one_call_and_fails_the_invocation(run: Run, emu: Emulator) -> None:
    emu.keys = {FAKE_AK: ("another-secret", FAKE_TOKEN)}
    with pytest.raises(DeliveryError, match="credentials were rejected"):
        sweep(run)
    assert emu.calls == [("list", 401)] and emu.published == []


def test_a_listing_that_fails_at_once_is_reported_as_incomplete(run: Run, emu: Emulator) -> None:
    emu.inject("list", Fault.answer(403, {"error_code": "WKS.0403", "error_msg": "cannot list"}))
    summary = sweep(run)
    assert summary["incomplete"] is True and summary["unlisted"] is None and summary["checked"] == 0
    assert "cannot list" in emu.published[0].message


def test_an_unknown_job_is_reported_not_dropped(run: Run, emu: Emulator) -> None:
    summary = run(load_event("cts-create-desktops.json"))
    assert summary["incomplete"] is True and "ShowJob" in summary["errors"][0]
    assert "ShowJob" in emu.published[0].message


def test_a_passing_publish_fault_is_retried_and_delivered_once(run: Run, emu: Emulator) -> None:
    emu.inject("publish", Fault.unavailable())
    summary = sweep(run)
    assert len(emu.published) == 1 and summary["published"] == [emu.published[0].message_id]


def test_an_undeliverable_notification_fails_the_invocation(run: Run, emu: Emulator) -> None:
    emu.inject("publish", Fault.server_error(), times=4)
    with pytest.raises(DeliveryError, match=r"WKS\.0500"):
        sweep(run)
    assert emu.published == []


def test_a_hanging_answer_cannot_take_the_function_past_its_deadline(
    run: Run, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scaled down: 3 s of invocation, 1 s kept to publish, instead of 900 s and 10 s.
    monkeypatch.setattr(index, "PUBLISH_RESERVE_SECONDS", 1.0)
    monkeypatch.setattr(index, "RETURN_MARGIN_SECONDS", 0.2)
    monkeypatch.setattr(client_module, "MIN_ATTEMPT_SECONDS", 0.1)
    emu.inject("sysprep", Fault.slow(60), times=1000)
    started = time.monotonic()
    summary = sweep(run, timeout=3)
    assert time.monotonic() - started < 3
    assert accounted(summary) == FLEET and summary["checked"] == 0
    reasons = {u["reason"] for u in summary["unchecked"]} - {"not_ready"}
    assert reasons <= {"deadline", "error: no answer in time (ReadTimeout)", "error: no complete answer in time"}
    notified(emu, summary)
