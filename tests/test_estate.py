"""The estate end to end on the emulator over real sockets: a fanned-out sweep of three targets (two regions of
this account, and a member account reached through its agency), each target's own report; a failing target next
to healthy ones; a forged target event; the targets swept in turn; exemptions by tag and by id."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import index
from conftest import EVENTS, FakeClock, load_event, load_script
from devkit import samples
from devkit.context import Context
from devkit.emulator import FAKE_AK, FAKE_SK, FAKE_TOKEN, Emulator, Fault, Fleet, Published, Sysprep, iam_refused
from devkit.emulator.iam import keystone_error
from sysprep_guard.errors import ConfigError, EventError

Run = Callable[..., dict[str, Any]]
ESTATE = load_event("estate-sweep.json")
FINANCE = f"{samples.FINANCE_REGION}/{samples.FINANCE_PROJECT}"
BUCKET = "sysprep-state"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(fleet=samples.fleet(20), buckets=[BUCKET]) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def run(emu: Emulator, clock: FakeClock) -> Run:
    """The handler as FunctionGraph runs it; the function's asynchronous invocations of itself run it again."""
    settings: dict[str, str] = {}

    def context(request_id: str | None = None) -> Context:
        return Context(
            settings,
            access_key=FAKE_AK,
            secret_key=FAKE_SK,
            security_token=FAKE_TOKEN,
            request_id=request_id,
            now=clock.now,
        )

    samples.stage_estate(emu, lambda event, request_id: index.handler(event, context(request_id)))

    def invoke(event: Any, **extra: str) -> dict[str, Any]:
        settings.clear()
        settings.update(emu.settings(**{**samples.LOCAL_POLICY, **samples.SAMPLE_SETTINGS["estate-sweep.json"](emu)}))
        settings.update(extra)
        index._services = None  # a cold start: the settings may differ from test to test
        return index.handler(event, context())

    return invoke


def docs(messages: list[Published]) -> list[dict[str, Any]]:
    return [json.loads(json.loads(m.body["message_structure"])["https"]) for m in messages]


def text_of(message: Published) -> str:
    return str(json.loads(message.body["message_structure"])["default"])


def attribute(message: Published, name: str) -> Any:
    return next(a["value"] for a in message.body["message_attributes"] if a["name"] == name)


def test_a_sweep_of_three_targets_fans_out_and_each_reports_on_its_own(run: Run, emu: Emulator) -> None:
    dispatched = run(ESTATE)
    assert dispatched["mode"] == "fan_out" and dispatched.get("published", []) == []
    assert [t.get("name") for t in dispatched["targets"]] == ["hq", "eu", "finance"]
    assert all(t["request_id"] and "error" not in t for t in dispatched["targets"])
    assert emu.wait_for_invocations()
    children = emu.invocations
    assert sorted(i.event["target_sweep"]["target"] for i in children) == sorted(
        t["target"] for t in dispatched["targets"]
    )
    assert all(i.error is None and i.result["trigger"] == "timer" for i in children), [i.trace for i in children]
    # Each target's own report, saying where; the member account's desktops read with its agency's keys.
    by_target = {d["target"]: d for d in docs(emu.published)}
    assert set(by_target) == {"hq", "eu", "finance"}
    finance = by_target["finance"]
    assert (finance["account"], finance["region"], finance["project_id"]) == (
        samples.ESTATE_ACCOUNT,
        samples.FINANCE_REGION,
        samples.FINANCE_PROJECT,
    )
    assert by_target["eu"]["region"] == samples.EU_REGION and by_target["eu"]["account"] is None
    assert [(i.agency, i.duration) for i in emu.issued] == [(samples.ESTATE_AGENCY, 900)]
    subjects = {attribute(m, "target"): m.subject for m in emu.published}
    assert subjects["finance"].endswith(
        f"(finance: account {samples.ESTATE_ACCOUNT}, {samples.FINANCE_REGION}, project {samples.FINANCE_PROJECT})"
    )
    # The kiosk exempt by tag is listed apart, never as a finding.
    (kiosk,) = finance["exempt"]
    assert kiosk["why"] == "tag sysprep-exempt=until=2027-03-31" and kiosk["until"] == "2027-03-31"
    assert kiosk["desktop_id"] not in {f["desktop_id"] for f in finance["findings"]}
    assert finance["counts"]["exempt"] == 1 and finance["counts"]["desktops"] == 26


def test_a_target_whose_agency_refuses_reports_it_and_the_others_are_untouched(run: Run, emu: Emulator) -> None:
    emu.inject("assume", iam_refused(), times=5)
    run(ESTATE)
    assert emu.wait_for_invocations()
    assert all(i.error is None for i in emu.invocations)  # each run ended; the refused one in its own report
    by_target = {d["target"]: d for d in docs(emu.published)}
    finance = by_target["finance"]
    assert finance["incomplete"] is True and finance["counts"]["checked"] == 0 and finance["counts"]["unlisted"] is None
    (error,) = finance["errors"]
    assert error.startswith(f"could not reach finance: account {samples.ESTATE_ACCOUNT}, {samples.FINANCE_REGION}")
    assert "iam CreateTemporaryAccessKeyByAgency failed, HTTP 403" in error and "iam:agencies:assume" in error
    assert by_target["hq"]["incomplete"] is False and by_target["eu"]["incomplete"] is False
    assert by_target["eu"]["counts"]["non_compliant"] > 0


def test_a_forged_target_event_is_refused_before_any_call(run: Run, emu: Emulator) -> None:
    forged = {"target_sweep": {"target": f"{samples.FINANCE_REGION}/{'f' * 32}", "trigger": "timer"}}
    with pytest.raises(EventError, match="is not one of TARGETS: the function checks only the places it is configured"):
        run(forged)
    with pytest.raises(EventError, match="malformed target event"):
        run({"target_sweep": {"target": FINANCE, "trigger": "timer", "account": "evil", "agency": "x"}})
    assert emu.counts == {} and emu.issued == []  # no Workspace, IAM or any other call


def test_one_target_is_swept_by_hand_and_its_history_is_its_own(run: Run, emu: Emulator) -> None:
    summary = run({"sweep": True, "target": "finance"}, STATE_BUCKET=BUCKET)
    assert (summary["target"], summary["project_id"], summary["state"]) == ("finance", samples.FINANCE_PROJECT, "saved")
    assert all(f"runs/{samples.FINANCE_PROJECT}/" in key for key in emu.buckets[BUCKET])
    assert emu.invocations == []


def test_fan_out_false_sweeps_each_target_here_in_turn(run: Run, emu: Emulator) -> None:
    summary = run(ESTATE, FAN_OUT="false")
    assert summary["mode"] == "in_turn" and emu.invocations == []
    assert [(t["name"], t["published"]) for t in summary["targets"]] == [("hq", 1), ("eu", 1), ("finance", 1)]
    assert {d["target"] for d in docs(emu.published)} == {"hq", "eu", "finance"}


def test_targets_that_cannot_be_started_are_named_in_one_message(run: Run, emu: Emulator) -> None:
    emu.inject("invoke_async", Fault.answer(403, {"error_code": "FSS.0403", "error_msg": "Forbidden."}), times=2)
    dispatched = run(ESTATE)
    failed = [t for t in dispatched["targets"] if "error" in t]
    assert len(failed) == 2 and all("FSS.0403" in t["error"] for t in failed)
    assert emu.wait_for_invocations() and len(emu.invocations) == 1  # the one started ran
    (notice,) = [m for m in emu.published if attribute(m, "report") == "dispatch"]
    assert notice.subject.startswith("Sysprep: the sweep of 2 of 3 targets could not be started (estate: ")
    assert "functiongraph:function:invokeAsync" in text_of(notice)
    (doc,) = docs([notice])
    assert doc["report"] == "dispatch" and doc["targets"] == 3 and len(doc["failed"]) == 2


def test_a_retried_dispatch_carries_the_same_fingerprint(run: Run, emu: Emulator) -> None:
    # Subscribers drop copies by (fingerprint, part): the platform's retry of the dispatch carries the same pair.
    emu.inject("invoke_async", Fault.answer(403, {"error_code": "FSS.0403", "error_msg": "Forbidden."}), times=6)
    run(ESTATE)
    run(ESTATE)
    first, again = [m for m in emu.published if attribute(m, "report") == "dispatch"]
    assert attribute(first, "fingerprint") == attribute(again, "fingerprint") != "none"
    assert attribute(first, "target") == "estate"


def test_exemptions_by_tag_with_an_expiry_and_by_id(run: Run, emu: Emulator, clock: FakeClock) -> None:
    today = emu_today(run, emu)
    fleet: Fleet = emu.fleet
    ended = fleet.add(Sysprep(version="3.0.1"), computer_name="ended", tags={samples.EXEMPT_TAG: "until=2020-01-01"})
    soon = fleet.add(Sysprep(version="3.0.1"), computer_name="soon", tags={samples.EXEMPT_TAG: f"until={today}"})
    by_id = fleet.add(Sysprep(version="3.0.1"), computer_name="by-id")
    summary = run({"sweep": True}, TARGETS="", EXEMPT_DESKTOP_IDS=f"{by_id} until=2099-12-31")
    findings = {f["desktop_id"] for f in summary["non_compliant"]}
    assert ended in findings and soon not in findings and by_id not in findings
    assert {(e["desktop_id"], e["why"]) for e in summary["exempt"]} == {
        (soon, f"tag sysprep-exempt=until={today}"),
        (by_id, "EXEMPT_DESKTOP_IDS"),
    }
    text = text_of(emu.published[-1])
    assert f"1 exemption ends within 7 days: {soon} ({today})." in text
    assert "2 desktops are exempt, not checked." in text


def emu_today(run: Run, emu: Emulator) -> str:
    """Today as the function sees it (UTC), from a first run's time."""
    return run({"sweep": True}, TARGETS="", DRY_RUN="true")["run_time"][:10]


def test_make_run_shows_the_estate_sweep_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    """`make run EVENT=events/estate-sweep.json`: the dispatch, then each target's own run and report."""
    invoke = load_script("invoke")
    assert invoke.main([str(EVENTS / "estate-sweep.json"), "--desktops", "5"]) == 0
    out = capsys.readouterr().out
    assert "Dispatched the sweep of 3 targets (hq, eu, finance)" in out
    parts = out.split("\n══ target ")[1:]
    assert [p.split(",")[0] for p in parts] == [
        "1 of 3: ap-southeast-1/0123456789abcdef0123456789abcdef",
        "2 of 3: eu-west-101/5f6e7d8c9b0a1f2e3d4c5b6a79880716",
        "3 of 3: cn-north-4/0a1b2c3d4e5f67890a1b2c3d4e5f6789",
    ]
    assert all("SMN notification 1/1: Sysprep: " in p for p in parts)
    assert "(finance: account acme-finance, cn-north-4, project" in parts[2]
    assert "Exempt desktops (1):" in parts[2] and "fin-kiosk-01" in parts[2]


def test_long_lists_are_read_from_obs_objects(run: Run, emu: Emulator) -> None:
    kiosk = next(d.desktop_id for d in emu.fleet if d.kind == "version_below_minimum")
    emu.put_object(BUCKET, "estate/targets.txt", samples.estate_targets(emu).replace(" ", "\n").encode())
    emu.put_object(BUCKET, "estate/exempt.txt", f"# accepted by the CISO\n{kiosk} until=2099-01-01\n".encode())
    summary = run(
        ESTATE,
        TARGETS=f"obs://{BUCKET}/estate/targets.txt",
        EXEMPT_DESKTOP_IDS=f"obs://{BUCKET}/estate/exempt.txt",
        FAN_OUT="false",
    )
    assert [t["name"] for t in summary["targets"]] == ["hq", "eu", "finance"]
    hq = next(d for d in docs(emu.published) if d["target"] == "hq")
    assert [e["desktop_id"] for e in hq["exempt"]] == [kiosk]


def test_an_unreadable_targets_object_fails_the_sweep_saying_which(run: Run, emu: Emulator) -> None:
    with pytest.raises(
        ConfigError, match=f"configuration TARGETS=obs://{BUCKET}/missing.txt: the object cannot be read"
    ):
        run(ESTATE, TARGETS=f"obs://{BUCKET}/missing.txt")
    assert emu.counts.get("list", 0) == 0 and emu.published == []


# A cloud that misbehaves ------------------------------------------------------------------------------------


def finance_first(emu: Emulator) -> str:
    return " ".join(sorted(samples.estate_targets(emu).split(), key=lambda t: not t.startswith("finance")))


def test_iam_refusing_the_functions_keys_stops_only_the_member_target(run: Run, emu: Emulator) -> None:
    # A 401 from IAM (an agency's session may not be allowed to assume further) says nothing of Workspace or SMN.
    emu.inject("assume", Fault.answer(401, keystone_error(401, "Unauthorized")), times=5)
    summary = run(ESTATE, FAN_OUT="false", TARGETS=finance_first(emu))
    assert [(t["name"], t["published"]) for t in summary["targets"]] == [("finance", 1), ("hq", 1), ("eu", 1)]
    finance = next(d for d in docs(emu.published) if d["target"] == "finance")
    assert "could not reach finance" in finance["errors"][0] and "iam:agencies:assume" in finance["errors"][0]


def test_a_fanned_out_target_refused_by_iam_still_publishes_its_report(run: Run, emu: Emulator) -> None:
    emu.inject("assume", Fault.answer(401, keystone_error(401, "Unauthorized")), times=5)
    run(ESTATE)
    assert emu.wait_for_invocations()
    assert all(i.error is None for i in emu.invocations), [i.error for i in emu.invocations]
    assert {d["target"] for d in docs(emu.published)} == {"hq", "eu", "finance"}


@pytest.mark.parametrize(
    "answer",
    [Fault("empty", 202, "", "application/json"), Fault.answer(200, []), Fault.answer(202, {"request_id": ""})],
    ids=["empty", "a list", "no id"],
)
def test_an_async_invocation_accepted_without_a_request_id_is_not_counted_started(
    run: Run, emu: Emulator, answer: Fault
) -> None:
    emu.inject("invoke_async", answer, times=3)
    dispatched = run(ESTATE)
    assert all("without a request id" in t["error"] for t in dispatched["targets"])
    (notice,) = [m for m in emu.published if attribute(m, "report") == "dispatch"]
    assert notice.subject.startswith("Sysprep: the sweep of 3 of 3 targets could not be started")


def test_a_numeric_request_id_is_a_started_invocation(run: Run, emu: Emulator) -> None:
    emu.inject("invoke_async", Fault.answer(202, {"request_id": 123}), times=3)
    dispatched = run(ESTATE)
    assert [t["request_id"] for t in dispatched["targets"]] == ["123"] * 3
    assert not [m for m in emu.published if attribute(m, "report") == "dispatch"]


def test_an_exempt_desktop_being_worked_on_is_exempt_not_unchecked(run: Run, emu: Emulator) -> None:
    busy = emu.fleet.add(
        Sysprep(version="3.0.1"), task_status="rebooting", tags={samples.EXEMPT_TAG: "until=2099-01-01"}
    )
    summary = run({"sweep": True}, TARGETS="")
    assert busy not in {u["desktop_id"] for u in summary["unchecked"]}
    assert busy in {e["desktop_id"] for e in summary["exempt"]}


@pytest.mark.parametrize("value", ["until=2025-1-31", "until=", "until=never", "31/03/2025", "20250131"])
def test_an_exemption_whose_end_cannot_be_read_exempts_nothing(
    run: Run, emu: Emulator, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    desktop = emu.fleet.add(Sysprep(version="3.0.1"), tags={samples.EXEMPT_TAG: value})
    summary = run({"sweep": True}, TARGETS="")
    assert desktop in {f["desktop_id"] for f in summary["non_compliant"]}
    assert "its date cannot be read" in capsys.readouterr().out


def test_a_member_projects_refusal_names_the_member_accounts_agency(run: Run, emu: Emulator) -> None:
    emu.inject("list", Fault.answer(403, {"error_code": "WKS.0403", "error_msg": "Forbidden"}), times=1)
    summary = run({"sweep": True, "target": "finance"})
    error = summary["errors"][0]  # and the listing's own
    assert f"account {samples.ESTATE_ACCOUNT}'s agency {samples.ESTATE_AGENCY} grants workspace:" in error
    assert "docs/iam-member-account.json" in error


def test_account_and_agency_are_plain_names_in_every_form_of_targets(run: Run, emu: Emulator) -> None:
    forged = [{"region": samples.FINANCE_REGION, "project_id": samples.FINANCE_PROJECT, "name": "finance",
               "account": "acme\r\nBcc: someone@example.com", "agency": "x"}]  # fmt: skip
    with pytest.raises(ConfigError, match=r"TARGETS.*account: .*may not hold white space"):
        run({"sweep": True, "target": "finance"}, TARGETS=json.dumps(forged))
    with pytest.raises(ConfigError, match="a project given twice"):
        run(ESTATE, TARGETS=f"a=cn-north-4/{samples.FINANCE_PROJECT} b=eu-west-101/{samples.FINANCE_PROJECT.upper()}")
    assert emu.counts == {}


def test_the_dispatchs_log_lines_keep_the_request_id(
    run: Run, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.inject("invoke_async", Fault.answer(500, {"error_code": "FSS.0500", "error_msg": "x"}), times=20)
    run(ESTATE)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert lines and [line["message"] for line in lines if line.get("request_id") is None] == []


def test_iam_failing_is_not_blamed_on_the_agencys_trust(run: Run, emu: Emulator) -> None:
    emu.inject("assume", Fault.answer(500, keystone_error(500, "Internal error")), times=10)
    summary = run({"sweep": True, "target": "finance"})
    (error,) = summary["errors"]
    assert error.startswith("could not reach finance") and "HTTP 500" in error and "trusts" not in error


def test_a_targets_run_logs_which_dispatch_started_it(
    run: Run, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    event = {"target_sweep": {"target": FINANCE, "trigger": "timer", "dispatched_by": "req-1"}}
    run(event)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert {"message": "one target's sweep", "target": "finance", "dispatched_by": "req-1"}.items() <= next(
        line for line in lines if line["message"] == "one target's sweep"
    ).items()
