"""The function against a hostile cloud (tests/hostile.py): one misbehaviour per test, over real sockets.

Every case asserts, through the helpers below:
- THE INVARIANT: each desktop set out to be checked is counted once, as checked (compliant or non-compliant) or
  unchecked; a run that says it is complete accounted for every one; `unlisted` is honest when total_count is;
- THE TIME BOUND: the handler returns (or raises) within its timeout plus 1.0 s;
- NO SECRET: the fake keys and token appear nowhere (logs, summary, exceptions, published bodies), in any encoding;
- BOUNDED TEXT: errors, exception messages, log lines and the summary have bounded sizes.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, unquote

import pytest
from tests.hostile import Hostile, Listing, Reply, Request, echoes, refuse, trickle

import index
from devkit.context import Context
from sysprep_guard import client as client_module
from sysprep_guard.client import RetryPolicy, SignedClient
from sysprep_guard.errors import ConfigError, DeliveryError, EventError

PROJECT = "0123456789abcdef0123456789abcdef"
REGION = "ap-southeast-1"
TOPIC = f"urn:smn:{REGION}:{PROJECT}:sysprep-alerts"
AK = "HOSTILEAKFAKE0000001"
SK = "hostile-fake-secret-key-000000000000001"
# 616 characters with '/' and '+' throughout, so that its encodings differ and every 64-column line holds both.
TOKEN = "".join(f"hostile/fake+token-{i:02d}/not+a+real+credential=" for i in range(14))
TIMER = {"version": "v1.0", "time": "2026-11-28T02:00:00+08:00", "trigger_type": "TIMER", "trigger_name": "t",
         "user_event": "x"}  # fmt: skip
FAST_RETRY = RetryPolicy(attempts=4, base=0.01, cap=0.05)
TIME_SLACK = 1.0  # the handler must be done within its timeout plus this
RELAXED, TIGHT = 20.0, 3.0  # timeouts: functional cases, and cases about time (with the reserves shrunk)
TRICKLE = 0.5  # seconds per byte
MAX_ERROR, MAX_EXCEPTION, MAX_LOG_LINE, MAX_SUMMARY = 600, 2000, 4000, 6 * 1024 * 1024
SMN_MESSAGE_MAX, SMN_SUBJECT_MAX = 256 * 1024, 512


# The run ----------------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    summary: dict[str, Any] | None = field(repr=False)
    error: BaseException | None
    elapsed: float
    timeout: float
    logs: str = field(repr=False)

    def ok(self) -> dict[str, Any]:
        """The summary; the invocation must not have failed."""
        assert self.error is None, f"the invocation failed: {type(self.error).__name__}: {str(self.error)[:500]}"
        assert self.summary is not None
        return self.summary


Run = Callable[..., Outcome]


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    with Hostile() as cloud:  # 2,500 compliant desktops
        yield cloud


@pytest.fixture
def run(hostile: Hostile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    monkeypatch.setattr(index, "SignedClient", functools.partial(SignedClient, retry=FAST_RETRY))

    def invoke(event: Any, *, timeout: float = RELAXED, tight: bool = False, **settings: str) -> Outcome:
        """Run the handler as FunctionGraph would, against the hostile cloud; check time, secrets and sizes."""
        if tight:  # as tests/test_faults.py scales a deadline down
            monkeypatch.setattr(index, "PUBLISH_RESERVE_SECONDS", 1.0)
            monkeypatch.setattr(index, "RETURN_MARGIN_SECONDS", 0.2)
            monkeypatch.setattr(client_module, "MIN_ATTEMPT_SECONDS", 0.1)
        monkeypatch.setattr(index, "_services", None)
        user_data = {
            "REGION": REGION,
            "PROJECT_ID": PROJECT,
            "SMN_TOPIC_URN": TOPIC,
            "ENDPOINTS": hostile.url,
            "MIN_SYSPREP_VERSION": "3.0.10",
            **settings,
        }
        context = Context(user_data, access_key=AK, secret_key=SK, security_token=TOKEN, timeout_seconds=timeout)
        box: dict[str, Any] = {}

        def handle() -> None:
            try:
                box["summary"] = index.handler(event, context)
            except BaseException as exc:  # whatever it raises is checked
                box["error"] = exc

        # The handler runs on a thread so that one stuck past its timeout fails the test instead of holding it.
        thread = threading.Thread(target=handle, daemon=True)
        started = time.monotonic()
        thread.start()
        thread.join(timeout + TIME_SLACK)
        elapsed = time.monotonic() - started
        if thread.is_alive():
            hostile.release()  # every stalled answer arrives at once, so that the handler ends before the next test
            thread.join(10)
            capsys.readouterr()
            waiting = [f"{r.method} {r.route} ({r.reply.status if r.reply else '-'})" for r in hostile.requests[-3:]]
            pytest.fail(
                f"TIME BOUND: the handler was still running {elapsed:.1f} s after it started, past its {timeout:g} s "
                f"timeout + {TIME_SLACK:g} s (last requests: {waiting})"
            )
        outcome = Outcome(box.get("summary"), box.get("error"), elapsed, timeout, capsys.readouterr().out)
        assert_time_bound(outcome)
        assert_no_secret(outcome, hostile)
        assert_bounded(outcome)
        return outcome

    return invoke


# Time, secrets, sizes ---------------------------------------------------------------------------------------------


def assert_time_bound(outcome: Outcome) -> None:
    assert outcome.elapsed <= outcome.timeout + TIME_SLACK, (
        f"TIME BOUND: the handler took {outcome.elapsed:.2f} s with a {outcome.timeout:g} s timeout"
    )


def _secret_forms() -> dict[str, str]:
    """Every form of a fake key or token that must never come out: raw, URL-encoded (both ways), JSON-escaped with
    its slashes escaped (once, or twice as a repr() or a JSON log line of it would be), and each 64-column line of
    each of them (a wrapped or cut copy)."""
    forms: dict[str, str] = {}
    for name, secret in (("AK", AK), ("SK", SK), ("token", TOKEN)):
        encoded = {
            "raw": secret,
            "URL-encoded": quote(secret, safe=""),
            "quote_plus-encoded": quote_plus(secret),
            "JSON-escaped": json.dumps(secret)[1:-1].replace("/", "\\/"),
        }
        encoded["doubly JSON-escaped"] = json.dumps(encoded["JSON-escaped"])[1:-1]
        for how, text in encoded.items():
            forms.setdefault(text, f"the {how} {name}")
            for i in range(0, len(text) - 63, 64):
                forms.setdefault(text[i : i + 64], f"line {i // 64 + 1} of the {how} {name} wrapped at 64 columns")
    forms["SDK-HMAC-SHA256"] = "the signing algorithm (a signature header)"
    forms["Signature="] = "a signature"
    return forms


SECRET_FORMS = _secret_forms()


def _published_texts(cloud: Hostile) -> list[tuple[str, str]]:
    texts = []
    for n, request in enumerate(cloud.calls("publish")):
        raw = request.body.decode("utf-8", "replace")
        texts.append((f"published body {n + 1} (as sent)", raw))
        try:
            body = json.loads(raw)
            structure = json.loads(body.get("message_structure") or "{}")
        except (ValueError, AttributeError):
            continue
        texts.append((f"published subject {n + 1}", str(body.get("subject"))))
        texts += [(f"published {protocol} message {n + 1}", str(text)) for protocol, text in structure.items()]
    return texts


def _decoded(line: str) -> str:
    """A JSON log line's strings as a reader sees them (its escapes undone)."""
    try:
        node = json.loads(line)
    except ValueError:
        return ""
    strings, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            strings.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return "\n".join(strings)


def assert_no_secret(outcome: Outcome, cloud: Hostile) -> None:
    decoded = "\n".join(_decoded(line) for line in outcome.logs.splitlines())
    texts = [("the logs", outcome.logs), ("the logs (JSON-decoded)", decoded), *_published_texts(cloud)]
    if outcome.summary is not None:
        texts.append(("the summary", json.dumps(outcome.summary, ensure_ascii=False)))
    if outcome.error is not None:
        texts.append((f"the {type(outcome.error).__name__} raised", str(outcome.error)))
    for where, text in texts:
        for form, what in SECRET_FORMS.items():
            at = text.find(form)
            assert at < 0, f"NO SECRET: {what} is in {where}: ...{text[max(0, at - 60) : at + 80]!r}..."


def assert_bounded(outcome: Outcome) -> None:
    for line in outcome.logs.splitlines():
        assert len(line) <= MAX_LOG_LINE, f"BOUNDED: a log line of {len(line):,} characters: {line[:200]!r}..."
    if outcome.error is not None:
        message = str(outcome.error)
        assert len(message) <= MAX_EXCEPTION, (
            f"BOUNDED: a {type(outcome.error).__name__} message of {len(message):,} characters: {message[:200]!r}..."
        )
    if outcome.summary is not None:
        for error in outcome.summary["errors"]:
            assert len(error) <= MAX_ERROR, f"BOUNDED: a summary error of {len(error):,} characters: {error[:200]!r}"
        size = len(json.dumps(outcome.summary, ensure_ascii=False).encode())
        assert size <= MAX_SUMMARY, f"BOUNDED: the summary is {size:,} bytes of JSON"


# The invariant ----------------------------------------------------------------------------------------------------


def counted(summary: dict[str, Any]) -> tuple[int, int]:
    """(non-compliant, unchecked) totals: summary["counts"] when it is there, else the lists' lengths."""
    counts = summary.get("counts") or {}
    return (
        counts.get("non_compliant", len(summary["non_compliant"])),
        counts.get("unchecked", len(summary["unchecked"])),
    )


def describe(summary: dict[str, Any]) -> str:
    non_compliant, unchecked = counted(summary)
    return (
        f"checked={summary['checked']:,} compliant={summary['compliant']:,} non_compliant={non_compliant:,} "
        f"unchecked={unchecked:,} incomplete={summary['incomplete']} unlisted={summary['unlisted']} "
        f"errors={[e[:160] for e in summary['errors'][:3]]}"
    )


def asked_about(cloud: Hostile) -> set[str]:
    """Desktops the function asked CheckSysprepInfo about."""
    return {d for r in cloud.calls("sysprep") for d in r.desktop_ids if isinstance(d, str)}


def listed_ids(cloud: Hostile) -> set[str]:
    """Desktops the listing answers carried."""
    return {
        row["desktop_id"]
        for r in cloud.calls("list")
        if r.reply is not None and r.reply.status == 200 and isinstance(r.reply.body, dict)
        for row in r.reply.body.get("desktops", [])
    }


def assert_invariant(
    summary: dict[str, Any], truth: Collection[str], cloud: Hostile | None = None, listed: set[str] | None = None
) -> None:
    """THE INVARIANT, against `truth`: the desktops the server truly holds (a sweep) or was asked for (an event).
    `listed`, for a sweep whose total_count is truthful: the desktops the listing answers carried."""
    truth = set(truth)
    true_count = len(truth)
    non_compliant, unchecked = counted(summary)
    checked, state = summary["checked"], describe(summary)
    assert checked == summary["compliant"] + non_compliant, (
        f"INVARIANT: checked is not compliant + non_compliant: {state}"
    )
    nc_ids = [f["desktop_id"] for f in summary["non_compliant"]]
    un_ids = [u["desktop_id"] for u in summary["unchecked"]]
    assert len(set(nc_ids)) == len(nc_ids), f"INVARIANT: a desktop is listed twice as non-compliant: {state}"
    assert len(set(un_ids)) == len(un_ids), f"INVARIANT: a desktop is listed twice as unchecked: {state}"
    both = set(nc_ids) & set(un_ids)
    assert not both, f"INVARIANT: {sorted(both)[:3]} both non-compliant and unchecked: {state}"
    assert checked <= true_count, f"INVARIANT: {checked:,} checked, but only {true_count:,} desktops exist: {state}"
    if cloud is not None:
        asked = len(asked_about(cloud))
        assert checked <= asked, (
            f"INVARIANT: {checked:,} desktops counted as checked, but CheckSysprepInfo was asked about only "
            f"{asked:,} distinct desktops: some desktop was counted twice: {state}"
        )
    accounted = checked + unchecked
    if not summary["incomplete"]:
        assert accounted == true_count, (
            f"INVARIANT: the run says it is complete but accounts for {accounted:,} desktops of {true_count:,}: {state}"
        )
        if cloud is not None and unchecked == len(un_ids):
            missing = sorted(truth - asked_about(cloud) - set(un_ids) - set(nc_ids))
            assert not missing, (
                f"INVARIANT: the run says it is complete but {len(missing):,} desktop(s) were never checked nor "
                f"reported, e.g. {missing[:2]}: {state}"
            )
    if listed is not None:
        never = len(truth - listed)
        assert summary["unlisted"] == never, (
            f"INVARIANT: {never:,} desktops were never listed but unlisted says {summary['unlisted']}: {state}"
        )


def assert_offsets_step_by_limit(cloud: Hostile) -> None:
    asked = [(int(r.param("offset") or 0), int(r.param("limit") or 0)) for r in cloud.calls("list")]
    odd = [(offset, limit) for offset, limit in asked if limit <= 0 or offset % limit]
    assert not odd, f"ListDesktops offsets must step by the limit asked for; got (offset, limit) {asked[:12]}"


def says_incomplete(body: dict[str, Any]) -> bool:
    """A published notification that says the run is incomplete (its JSON document, subject or report)."""
    structure = json.loads(body["message_structure"])
    document = json.loads(structure.get("http") or "{}")
    return (
        document.get("incomplete") is True
        or "incomplete" in body["subject"].lower()
        or "incomplete" in structure.get("default", "").lower()
    )


def assert_published_within_limits(cloud: Hostile) -> None:
    for n, body in enumerate(cloud.published, start=1):
        size = len(body["message_structure"].encode())
        assert size <= SMN_MESSAGE_MAX, f"published message {n} is {size:,} bytes, over SMN's {SMN_MESSAGE_MAX:,}"
        subject = len(body["subject"].encode())
        assert subject <= SMN_SUBJECT_MAX, f"published subject {n} is {subject:,} bytes, over {SMN_SUBJECT_MAX}"


# Fleets and events --------------------------------------------------------------------------------------------------


def keep(cloud: Hostile, count: int, *, failing: int = 0) -> list[str]:
    """Shrink the fleet to `count` desktops, the first `failing` of them below the minimum version."""
    cloud.remove(cloud.ids[count:])
    for desktop_id in cloud.ids[:failing]:
        cloud.infos[desktop_id]["sysprep_version"] = "2.0"
    return cloud.ids


def cts(trace_name: str, response: Any, request: Any = "") -> dict[str, Any]:
    return {
        "cts": {
            "service_type": "Workspace",
            "resource_type": "workspace",
            "trace_name": trace_name,
            "trace_rating": "normal",
            "code": "200",
            "request": request if isinstance(request, str) else json.dumps(request),
            "response": response if isinstance(response, str) else json.dumps(response),
        }
    }


# 0. The control: the truthful cloud ----------------------------------------------------------------------------


def test_the_truthful_cloud_passes_every_check(run: Run, hostile: Hostile) -> None:
    """No misbehaviour at all (2,500 desktops, three non-compliant): every check of this file holds, so that each
    failure below is the misbehaviour's doing, not the harness's."""
    failing = set(keep(hostile, 2500, failing=3)[:3])
    summary = run(TIMER).ok()
    assert_invariant(summary, hostile.ids, hostile, listed_ids(hostile))
    assert_offsets_step_by_limit(hostile)
    assert summary["checked"] == 2500 and summary["incomplete"] is False, describe(summary)
    assert {f["desktop_id"] for f in summary["non_compliant"]} == failing, describe(summary)
    assert len(hostile.published) == 1, f"{len(hostile.published)} messages published for three findings"
    assert_published_within_limits(hostile)


# 1. Listings ------------------------------------------------------------------------------------------------------


def sweep_with(run: Run, cloud: Hostile, listing: Listing, *, truthful: bool = True) -> dict[str, Any]:
    """A TIMER sweep over the scripted listing: the invariant against the fleet as it ends, offsets stepped by the
    limit, and (when total_count is truthful) an honest `unlisted`."""
    cloud.on("list", listing)
    summary = run(TIMER).ok()
    assert_invariant(summary, cloud.ids, cloud, listed_ids(cloud) if truthful else None)
    assert_offsets_step_by_limit(cloud)
    return summary


def test_a_page_short_once_is_read_again_whole(run: Run, hostile: Hostile) -> None:
    """The page at offset 1,000 comes back 400 rows short once, while total_count says 2,500: reading it again
    gets it whole, and the sweep is complete."""
    summary = sweep_with(run, hostile, Listing(short={1000: 400}, short_times=1))
    assert summary["checked"] == 2500 and summary["incomplete"] is False, (
        f"a page short once must be read again, whole: {describe(summary)}"
    )


def test_a_page_short_on_every_try_makes_the_run_incomplete(run: Run, hostile: Hostile) -> None:
    """The page at offset 1,000 is 400 rows short on every read: the run is incomplete, and `unlisted` says the
    400 desktops never listed."""
    summary = sweep_with(run, hostile, Listing(short={1000: 400}))
    assert summary["incomplete"] is True, f"a page that stays short must make the run incomplete: {describe(summary)}"


def test_empty_pages_under_a_total_count_are_reported_incomplete(run: Run, hostile: Hostile) -> None:
    """Every page is empty while total_count says 2,500: nothing is checked, the run is incomplete with 2,500
    unlisted, and a notification saying so is published (an empty fleet would publish nothing)."""
    summary = sweep_with(run, hostile, Listing(empty=True))
    assert summary["incomplete"] is True and summary["unlisted"] == 2500, describe(summary)
    assert hostile.published, "nothing was published for a sweep that listed none of 2,500 desktops"
    assert all(says_incomplete(body) for body in hostile.published), "the notification does not say incomplete"


def test_a_row_repeated_within_a_page_is_counted_once_and_hides_no_desktop(run: Run, hostile: Hostile) -> None:
    """On every read, the page at offset 1,000 repeats the row before index 1,500 in its place: that desktop is
    counted once, and the one the repeat hid is not lost (checked after a retry, or reported as never listed)."""
    hidden = hostile.ids[1500]
    summary = sweep_with(run, hostile, Listing(repeat=1500))
    reported = summary["incomplete"] and (summary["unlisted"] or 0) >= 1
    found = hidden in asked_about(hostile) or hidden in {u["desktop_id"] for u in summary["unchecked"]}
    assert found or reported, f"desktop {hidden}, hidden by a repeated row, was lost: {describe(summary)}"


def test_a_server_that_ignores_offset_makes_the_run_incomplete(run: Run, hostile: Hostile) -> None:
    """Every page is the first page, whatever the offset: the 1,000 desktops seen are checked once, not 2,500
    "checked", and the run is incomplete with 1,500 unlisted."""
    summary = sweep_with(run, hostile, Listing(ignore_offset=True))
    assert summary["checked"] <= 1000, f"only 1,000 distinct desktops were ever listed: {describe(summary)}"
    assert summary["incomplete"] is True, f"a listing that repeats itself is incomplete: {describe(summary)}"


def test_a_total_count_too_high_makes_the_run_incomplete(run: Run, hostile: Hostile) -> None:
    """total_count says 3,000 while 2,500 desktops exist (the last page is short): the run cannot be complete."""
    summary = sweep_with(run, hostile, Listing(total=lambda true: 3000), truthful=False)
    assert summary["incomplete"] is True, f"total_count promised 500 more desktops: {describe(summary)}"


def test_a_total_count_too_low_does_not_stop_the_listing(run: Run, hostile: Hostile) -> None:
    """total_count says 1,000 while 2,500 exist: a full last page is followed by another read, so all 2,500 are
    checked."""
    summary = sweep_with(run, hostile, Listing(total=lambda true: 1000), truthful=False)
    assert summary["checked"] == 2500, f"a full page is followed by another read: {describe(summary)}"


def test_desktops_added_during_a_sweep_are_all_read(run: Run, hostile: Hostile) -> None:
    """700 desktops are appended after the first page was served (total_count grows to 3,200): all are read."""
    grow = Listing(before=lambda cloud, n: cloud.add(700) if n == 1 else None)
    summary = sweep_with(run, hostile, grow)
    assert summary["checked"] == 3200, f"the desktops created during the sweep were not all read: {describe(summary)}"


def test_desktops_deleted_during_a_sweep_raise_no_false_alarm(run: Run, hostile: Hostile) -> None:
    """The last 700 desktops are deleted after the first page was served (total_count shrinks to 1,800): no false
    alarm, and the invariant holds against the fleet as it ends."""
    shrink = Listing(before=lambda cloud, n: cloud.remove(cloud.ids[1800:]) if n == 1 else None)
    summary = sweep_with(run, hostile, shrink)
    assert counted(summary)[0] == 0, f"a deleted desktop was reported non-compliant: {summary['non_compliant'][:2]}"


# 2-3. Trickles ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["list", "publish"])
def test_a_trickled_status_line_and_headers_cannot_hold_the_invocation(run: Run, hostile: Hostile, route: str) -> None:
    """The status line and headers come one byte every 0.5 s (a gateway stuck mid-answer): the handler returns
    or fails within its timeout plus 1 s, and a listing that never answered leaves the run incomplete."""
    truth = keep(hostile, 150, failing=2)
    hostile.on(route, trickle(head_every=TRICKLE))
    outcome = run(TIMER, timeout=TIGHT, tight=True)
    if route == "publish":
        assert outcome.error is None or isinstance(outcome.error, DeliveryError), repr(outcome.error)
    else:
        summary = outcome.ok()
        assert summary["incomplete"] is True, describe(summary)
        assert_invariant(summary, truth, hostile)


@pytest.mark.parametrize("route", ["sysprep", "publish"])
def test_a_trickled_body_cannot_hold_the_invocation(run: Run, hostile: Hostile, route: str) -> None:
    """The body comes one byte every 0.5 s: the handler returns or fails within its timeout plus 1 s."""
    truth = keep(hostile, 150, failing=2)
    hostile.on(route, trickle(body_every=TRICKLE))
    outcome = run(TIMER, timeout=TIGHT, tight=True)
    if route == "publish":
        assert outcome.error is None or isinstance(outcome.error, DeliveryError), repr(outcome.error)
    else:
        assert_invariant(outcome.ok(), truth, hostile)


# 4-5. Secrets -----------------------------------------------------------------------------------------------------

LEADS = ["raw", "url", "plus", "json", "wrapped", "authorization"]


def _echo(request: Request, lead: str) -> str:
    """Every echoed form of the request's secrets, `lead` first (where a cut snippet would keep it)."""
    pieces = echoes(request)
    return " | ".join(f"[{name}] {pieces[name]}" for name in [lead, *(p for p in pieces if p != lead)])


def _echoing(shape: str, lead: str) -> Callable[[Hostile, Request], Reply]:
    def hook(cloud: Hostile, request: Request) -> Reply:
        text = _echo(request, lead)
        if shape == "error_msg":
            return Reply(400, {"error_code": "WKS.0400", "error_msg": text, "error_detail": text, "echo": text})
        if shape == "error_detail":
            return Reply(400, {"error_code": "WKS.0400", "error_detail": text, "echo": text})
        if shape == "extra_field":  # no message: only a snippet of the raw body can say what happened
            raw = json.dumps({"error_code": "WKS.0500", "echo": text}).replace("/", "\\/")
            return Reply(500, raw)
        reply = cloud.truth(request)  # "sysprep_version": a 200 whose version is the token
        reply.body["sysprep_infos"][0]["sysprep_version"] = echoes(request)[lead]
        return reply

    return hook


@pytest.mark.parametrize("lead", LEADS)
@pytest.mark.parametrize(
    ("route", "shape"),
    [
        ("sysprep", "error_msg"),
        ("sysprep", "error_detail"),
        ("sysprep", "extra_field"),
        ("sysprep", "sysprep_version"),
        ("list", "error_msg"),
    ],
)
def test_echoed_secrets_never_come_out(run: Run, hostile: Hostile, route: str, shape: str, lead: str) -> None:
    """The server echoes the request's X-Security-Token (raw, URL-encoded, JSON-escaped, wrapped at 64 columns)
    and Authorization header in an error's error_msg, error_detail or an extra field, or in a 200's
    sysprep_version: none of it reaches the logs, the summary, an exception or a notification."""
    truth = keep(hostile, 100)
    hostile.on(route, _echoing(shape, lead))
    outcome = run(TIMER)  # the run checks for secrets in every form
    assert outcome.error is None or isinstance(outcome.error, DeliveryError), repr(outcome.error)
    if outcome.summary is not None:
        assert_invariant(outcome.summary, truth, hostile)


def test_an_endpoint_with_a_password_fails_configuration_without_repeating_it(run: Run, hostile: Hostile) -> None:
    """ENDPOINTS carries user:password (the password holding '@' and '/'): configuration fails with
    ConfigError, and no part of the userinfo is in the message or the logs; no request is sent."""
    port = hostile.url.rsplit(":", 1)[1]
    outcome = run(TIMER, ENDPOINTS=f"http://user:p@ss/w0rd@127.0.0.1:{port}")
    error, logs = outcome.error, outcome.logs
    assert isinstance(error, ConfigError), f"expected ConfigError, got {error!r}"
    for part in ("user:", "p@ss", "ss/w0rd", "w0rd"):
        assert part not in str(error), f"{part!r} of the endpoint's userinfo is in the ConfigError: {error}"
        assert part not in logs, f"{part!r} of the endpoint's userinfo is in the logs: {logs[:300]}"
    assert hostile.requests == [], "a request was sent before the configuration was refused"


# 6. Oversized -----------------------------------------------------------------------------------------------------


def assert_reported(outcome: Outcome, cloud: Hostile) -> dict[str, Any] | None:
    """Nothing raises but a delivery failure; something was published (within SMN's limits) or the summary says
    what happened."""
    if outcome.error is not None:
        assert isinstance(outcome.error, DeliveryError), f"only a delivery failure may fail: {outcome.error!r}"
        return None
    summary = outcome.summary
    assert summary is not None
    assert cloud.published or summary["errors"] or counted(summary)[1], (
        f"nothing was published and the summary says nothing went wrong: {describe(summary)}"
    )
    assert_published_within_limits(cloud)
    return summary


def test_a_300000_character_desktop_id_is_reported_not_passed_on(run: Run, hostile: Hostile) -> None:
    """A listing row carries a 300,000-character desktop_id (Workspace's are UUIDs): the invocation still reports
    (published within SMN's limits, or the summary says so), and every listed row is accounted for."""
    keep(hostile, 150)
    huge = str(uuid.uuid4()) + "-" + "f" * (300_000 - 37)
    with hostile.lock:
        hostile.rows[huge] = {"desktop_id": huge, "computer_name": "desk-huge", "user_name": "u", "status": "ACTIVE"}
        hostile.infos[huge] = {"sysprep_version": "3.1.2", "support_hibernate": True, "support_update_route": True}
    summary = assert_reported(run(TIMER), hostile)
    if summary is not None:
        assert_invariant(summary, hostile.ids)


def test_a_2mb_error_message_is_cut_everywhere(run: Run, hostile: Hostile) -> None:
    """Every CheckSysprepInfo call fails with a 2 MB error_msg: the desktops are reported unchecked, the
    notification fits SMN, and no log line, error or exception carries the 2 MB."""
    truth = keep(hostile, 150)
    message = "refused: " + "this message goes on and on " * (2 * 1024 * 1024 // 28)
    hostile.on("sysprep", lambda cloud, request: Reply(400, {"error_code": "WKS.0400", "error_msg": message}))
    summary = assert_reported(run(TIMER), hostile)
    if summary is not None:
        assert_invariant(summary, truth, hostile)


def test_forty_error_codes_over_4000_desktops_are_reported(run: Run, hostile: Hostile) -> None:
    """Each of the 40 CheckSysprepInfo batches of a 4,000-desktop sweep fails with its own error code: all 4,000
    desktops are unchecked, and the notification, its parts and subjects stay within SMN's limits."""
    hostile.add(1500)
    hostile.on(
        "sysprep",
        lambda cloud, request: Reply(
            400, {"error_code": f"WKS.{4000 + request.n}", "error_msg": f"refused for reason number {request.n}"}
        ),
    )
    summary = assert_reported(run(TIMER), hostile)
    assert summary is not None, "the findings were not delivered"
    assert_invariant(summary, hostile.ids, hostile)
    assert counted(summary)[1] == 4000, describe(summary)


# 7. Conflicting entries -------------------------------------------------------------------------------------------


def test_a_desktop_listed_twice_failing_then_passing_is_not_compliant(run: Run, hostile: Hostile) -> None:
    """CheckSysprepInfo lists one desktop twice, first at version 2.0 (failing), then at 3.1.2 (passing): the
    desktop does not come out compliant (it is non-compliant or unchecked)."""
    truth = keep(hostile, 150)
    target = truth[5]

    def conflicting(cloud: Hostile, request: Request) -> Reply:
        reply = cloud.truth(request)
        infos = reply.body["sysprep_infos"]
        for i, info in enumerate(infos):
            if info["desktop_id"] == target:
                infos[i : i + 1] = [{**info, "sysprep_version": "2.0"}, {**info, "sysprep_version": "3.1.2"}]
                break
        return reply

    hostile.on("sysprep", conflicting)
    summary = run(TIMER).ok()
    assert_invariant(summary, truth, hostile)
    flagged = {f["desktop_id"] for f in summary["non_compliant"]} | {u["desktop_id"] for u in summary["unchecked"]}
    assert target in flagged, f"desktop {target}, reported at 2.0 and at 3.1.2, came out compliant"


# 8. Refusals while calls queue ------------------------------------------------------------------------------------


def test_a_rejected_key_is_used_for_one_call_only(run: Run, hostile: Hostile) -> None:
    """Every call is answered 401 APIG.0301 after 0.3 s while 3,000 desktops (30 ListDesktopsDetail and 30
    CheckSysprepInfo calls) queue behind MAX_CONCURRENCY=2: at most one call carrying those keys is sent (the
    gateway locks a key after 5 bad signatures)."""
    hostile.add(500)
    rejected = refuse(401, "APIG.0301", "Incorrect IAM authentication information: verify aksk signature fail", 0.3)
    for route in ("list", "detail", "sysprep", "job", "publish"):
        hostile.on(route, rejected)
    outcome = run({"desktop_ids": hostile.ids}, MAX_CONCURRENCY="2")
    sent = [f"{r.method} {r.route}" for r in hostile.requests]
    assert len(sent) <= 1, f"{len(sent)} calls were signed with rejected keys: {sent[:6]}"
    if outcome.summary is not None:
        assert_invariant(outcome.summary, hostile.ids, hostile)


def test_a_missing_permission_costs_one_sysprep_call(run: Run, hostile: Hostile) -> None:
    """CheckSysprepInfo is answered 403 after 0.3 s, with 3,000 desktops queued behind MAX_CONCURRENCY=2: at most
    one CheckSysprepInfo call is sent, and every desktop is reported unchecked."""
    hostile.add(500)
    denied = "Policy doesn't allow workspace:desktops:getSysPrepInfo to be performed."
    hostile.on("sysprep", refuse(403, "WKS.0403", denied, 0.3))
    summary = run({"desktop_ids": hostile.ids}, MAX_CONCURRENCY="2").ok()
    calls = len(hostile.calls("sysprep"))
    assert calls <= 1, f"{calls} CheckSysprepInfo calls were sent after a 403"
    assert_invariant(summary, hostile.ids, hostile)
    assert counted(summary)[1] == 3000, describe(summary)


# 9. Jobs ----------------------------------------------------------------------------------------------------------


def test_a_job_id_that_would_change_the_path_is_refused_before_use(run: Run, hostile: Hostile) -> None:
    """A CTS trace's response names job "a/../b?x=1": no request's path holds ".." or "?x=1", and no call is
    answered 401 (a gateway whose signature check saw a rewritten path), because the id is refused before use."""

    def gateway(cloud: Hostile, request: Request) -> Reply | None:
        if ".." in unquote(request.target) or "%2f" in request.target.lower() or request.query:
            return Reply(401, {"error_code": "APIG.0301", "error_msg": "Incorrect IAM authentication information"})
        return None

    hostile.on("job", gateway)
    outcome = run(cts("createDesktops", {"job_id": "a/../b?x=1"}))
    assert outcome.error is None or isinstance(outcome.error, EventError), repr(outcome.error)
    for request in hostile.requests:
        target = unquote(request.target)
        assert ".." not in target and "x=1" not in target, f"a request was sent to {request.target!r}"
    rejected = [r.target for r in hostile.requests if r.reply and r.reply.status == 401]
    assert not rejected, f"calls answered 401: {rejected}"
    if outcome.summary is not None:
        assert_invariant(outcome.summary, [], hostile)


def test_a_trace_naming_3000_jobs_follows_at_most_50(run: Run, hostile: Hostile) -> None:
    """A createBatchChangeOrder trace names 3,000 jobs (each re-imaged one desktop): at most 50 are followed, and
    the summary says the rest were not (incomplete, an error naming the cap of 50)."""
    hostile.add(500)
    jobs = [hostile.add_job([desktop_id]) for desktop_id in hostile.ids]
    event = cts("createBatchChangeOrder", {"orders": [{"job_id": j} for j in jobs]}, {"type": "CHANGE_IMAGE"})
    outcome = run(event)
    followed = len({r.path for r in hostile.calls("job")})
    assert followed <= 50, f"{followed:,} of the 3,000 jobs named were followed; at most 50 may be"
    summary = outcome.ok()
    assert summary["incomplete"] is True, f"jobs were left unfollowed: {describe(summary)}"
    assert any(re.search(r"\b50\b", error) for error in summary["errors"]), (
        f"no error names the cap of 50 jobs: {summary['errors'][:3]}"
    )
    assert_invariant(summary, hostile.ids, hostile)


# 10. Delivery -----------------------------------------------------------------------------------------------------


def test_a_publish_answered_without_message_id_is_delivered_once(run: Run, hostile: Hostile) -> None:
    """SMN answers the publish 200 with no message_id: the message was accepted, so the invocation does not fail,
    and the part is not published again."""
    truth = keep(hostile, 150, failing=2)

    def no_message_id(cloud: Hostile, request: Request) -> Reply:
        reply = cloud.truth(request)
        del reply.body["message_id"]
        return reply

    hostile.on("publish", no_message_id)
    summary = run(TIMER).ok()
    publishes = len(hostile.calls("publish"))
    assert publishes == 1, f"one part, published {publishes} times"
    assert_invariant(summary, truth, hostile)


@pytest.mark.parametrize("failing", [2, 700], ids=["one-part", "several-parts"])
def test_every_message_carries_its_fingerprint_and_part(run: Run, hostile: Hostile, failing: int) -> None:
    """Every published message carries message_attributes `fingerprint` (STRING, the summary's) and `part`
    (STRING, "1_of_1", or "i_of_n" for each of n parts)."""
    truth = keep(hostile, 1000, failing=failing)
    summary = run(TIMER).ok()
    assert_invariant(summary, truth, hostile)
    parts = []
    for body in hostile.published:
        attributes = {a["name"]: a for a in body["message_attributes"]}
        assert len(attributes) <= 10, f"{len(attributes)} message attributes, over SMN's 10"
        fingerprint = attributes.get("fingerprint")
        assert fingerprint == {"name": "fingerprint", "type": "STRING", "value": summary["fingerprint"]}, (
            f"message attribute fingerprint: {fingerprint}, summary fingerprint {summary['fingerprint']}"
        )
        part = attributes.get("part")
        assert part is not None and part["type"] == "STRING", f"message attribute part: {part}"
        parts.append(part["value"])
    count = len(hostile.published)
    assert sorted(parts) == sorted(f"{i}_of_{count}" for i in range(1, count + 1)), f"parts {parts} of {count} messages"


# 11. Fingerprint --------------------------------------------------------------------------------------------------


def _failing_page(cloud: Hostile, request: Request) -> Reply | None:
    if request.param("offset") == "2000":
        return Reply(500, {"error_code": "WKS.0500", "error_msg": "Internal server error."})
    return None


@pytest.mark.parametrize("incomplete", [Listing(short={1000: 400}), _failing_page], ids=["short-page", "failing-page"])
def test_a_complete_and_an_incomplete_sweep_have_different_fingerprints(
    run: Run, hostile: Hostile, incomplete: Any
) -> None:
    """Two sweeps find the same three non-compliant desktops, one complete, one incomplete (a page short on
    every read, or failing on every try): their fingerprints differ, so a receiver dropping repeats keeps both."""
    keep(hostile, 2500, failing=3)
    complete = run(TIMER).ok()
    assert_invariant(complete, hostile.ids, hostile, listed_ids(hostile))
    hostile.on("list", incomplete)
    partial = run(TIMER).ok()
    assert partial["incomplete"] is True, f"the second sweep missed desktops: {describe(partial)}"
    same = {f["desktop_id"] for f in complete["non_compliant"]} == {f["desktop_id"] for f in partial["non_compliant"]}
    assert same, "the two sweeps should have the same findings"
    assert complete["fingerprint"] != partial["fingerprint"], (
        f"a complete and an incomplete sweep share fingerprint {complete['fingerprint']}"
    )


# 12. Events and configuration -------------------------------------------------------------------------------------


def test_a_timer_event_with_a_numeric_time_and_an_object_user_event_is_a_sweep(run: Run, hostile: Hostile) -> None:
    """A TIMER event whose `time` is a number and whose `user_event` is an object is still a sweep."""
    truth = keep(hostile, 100)
    event = {**TIMER, "time": 1795846307, "user_event": {"note": "nightly"}}
    summary = run(event).ok()
    assert summary["trigger"] == "timer" and summary["checked"] == 100, describe(summary)
    assert_invariant(summary, truth, hostile)


def test_a_timer_event_naming_desktops_is_refused_before_any_request(run: Run, hostile: Hostile) -> None:
    """{"trigger_type": "TIMER", "desktop_ids": [...]} is neither a timer nor a manual event: EventError, and no
    request is sent."""
    error = run({"trigger_type": "TIMER", "desktop_ids": hostile.ids[:3]}).error
    sent = [f"{r.method} {r.route}" for r in hostile.requests]
    assert isinstance(error, EventError), f"expected EventError, got {error!r} after {len(sent)} requests {sent[:3]}"
    assert sent == [], f"requests were sent for a refused event: {sent[:5]}"


@pytest.mark.parametrize("endpoint", ["https://work space.example.com", "https://wörk.example.com"])
def test_an_endpoint_host_with_a_space_or_non_ascii_fails_configuration(
    run: Run, hostile: Hostile, endpoint: str
) -> None:
    """An ENDPOINTS host with a space or non-ASCII characters fails configuration (ConfigError naming the
    key), not at call time."""
    outcome = run(TIMER, ENDPOINTS=f"workspace={endpoint}")
    error = outcome.error
    assert isinstance(error, ConfigError), (
        f"expected ConfigError, got {error!r}; the endpoint was accepted and failed at call time: "
        f"{outcome.summary and outcome.summary['errors'][:1]}"
    )
    assert "ENDPOINTS" in str(error), f"the ConfigError does not name the key: {error}"
    assert hostile.requests == [], "a request was sent before the configuration was refused"
