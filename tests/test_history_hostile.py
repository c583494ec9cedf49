"""The run history against an OBS that lies, stalls, repeats itself and echoes secrets: the run still reports,
on time, says what went wrong, and shows no key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

import index
from conftest import FakeClock
from devkit.context import Context
from devkit.emulator import FAKE_AK, FAKE_SK, FAKE_TOKEN, Emulator, Fault, Fleet, Sysprep
from devkit.emulator.obs import XML, error_xml
from sysprep_guard import obs_store
from sysprep_guard.client import Credentials
from sysprep_guard.errors import ApiError

BUCKET = "sysprep-state"
SUNDAY = date(2026, 11, 29)
SECRETS = (FAKE_SK, FAKE_TOKEN)


def timer(day: date) -> dict[str, Any]:
    return {"version": "v1.0", "time": f"{day.isoformat()}T02:00:00+08:00", "trigger_type": "TIMER"}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(fleet=Fleet.seeded(30, seed=3, per_kind=0), buckets=[BUCKET]) as emulator:
        emulator.fleet.add(Sysprep(version="3.0.1"))
        yield emulator


def run(emu: Emulator, clock: FakeClock, day: date, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    user_data = emu.settings(MIN_SYSPREP_VERSION="3.0.10", STATE_BUCKET=BUCKET)
    index._services = None
    context = Context(user_data, access_key=FAKE_AK, secret_key=FAKE_SK, security_token=FAKE_TOKEN, now=clock.now)
    summary = index.handler(timer(day), context)
    return summary, capsys.readouterr().out


def shown(summary: dict[str, Any], logs: str, emu: Emulator) -> str:
    """Everything a person or a program sees of a run."""
    return json.dumps(summary) + logs + "".join(json.dumps(p.body) for p in emu.published)


def test_an_obs_error_that_echoes_the_keys_never_shows_them(
    emu: Emulator, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    echo = f"Access denied for key {FAKE_AK} secret {FAKE_SK} token {FAKE_TOKEN}"
    emu.inject("obs_put", Fault("echo", 403, error_xml("AccessDenied", echo, "{request_id}", "h").decode(), XML))
    summary, logs = run(emu, clock, SUNDAY, capsys)
    assert summary["state"].startswith("not saved: obs PutObject") and summary["published"]
    assert "AccessDenied" in summary["state"]
    seen = shown(summary, logs, emu)
    assert all(secret not in seen for secret in SECRETS)


def test_a_listing_that_never_moves_on_costs_the_history_not_the_run(
    emu: Emulator, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    run(emu, clock, SUNDAY, capsys)
    key = next(iter(emu.buckets[BUCKET]))
    again = (  # "more to come", from the same place, every time
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>sysprep-state</Name><Prefix></Prefix>'
        f"<NextMarker>a</NextMarker><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><Contents><Key>{key}</Key>"
        "<Size>1</Size></Contents></ListBucketResult>"
    )
    emu.inject("obs_list", Fault("round_and_round", 200, again, XML), times=1000)
    summary, _ = run(emu, clock, SUNDAY + timedelta(days=1), capsys)
    assert summary["state"].startswith("saved, but could not be read: obs ListObjects")
    assert "does not move past its marker" in summary["state"]
    assert summary["notified"].startswith("full: the history in OBS is out of reach") and summary["published"]
    assert emu.counts["obs_list"] == 2  # the first page, then the one that went back: not a thousand


def test_a_run_object_too_large_is_not_read_and_the_run_reports_in_full(
    emu: Emulator, clock: FakeClock, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(emu, clock, SUNDAY, capsys)
    monkeypatch.setattr(obs_store, "MAX_OBJECT_BYTES", 100)  # the baseline's object is larger
    summary, logs = run(emu, clock, SUNDAY + timedelta(days=1), capsys)
    assert summary["notified"] == "full: the last complete sweep's run object could not be read"
    assert "a run object could not be read; left out" in logs and summary["published"]


def test_a_stalling_obs_call_is_given_up_when_its_time_is_up(emu: Emulator) -> None:
    store = obs_store.ObsStore(emu.url, BUCKET, Credentials(FAKE_AK, FAKE_SK, FAKE_TOKEN))
    store.seconds = 0.05  # at least a second in the function: short here, so that the test waits for nothing
    emu.inject("obs_get", Fault("stall", delay=30.0))
    with pytest.raises(ApiError, match="no answer within"):
        store.get("sysprep-guard/anything")
