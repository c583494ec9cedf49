"""Judging: the desktops found, checked with CheckSysprepInfo 100 at a time, calls in flight up to
MAX_CONCURRENCY, each desktop ending compliant, non-compliant or unchecked."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import date
from typing import TYPE_CHECKING

from .errors import ApiError
from .exemptions import exemption
from .logs import log, redact
from .models import Desktop, SysprepInfo
from .policy import REASONS, judge
from .report import NOT_READY, Finding
from .text import clip
from .workspace import SYSPREP_BATCH

if TYPE_CHECKING:
    from .orchestrator import Run

MAX_FIELD_CHARS = 120  # a version or a name from an answer: bounded, so that any one desktop fits a message

InFlight = dict[Future[list[SysprepInfo]], list[Desktop]]


def judge_all(run: Run, desktops: Iterator[Desktop]) -> None:
    """The first call goes alone, so that dead credentials cost one rejected call, not a volley of them."""
    in_flight: InFlight = {}
    window = 1
    for batch in _batches(desktops, SYSPREP_BATCH):
        if run.stopped is not None:  # out of time, or refused: further calls cannot succeed
            run.give_up([d.desktop_id for d in batch], run.stopped)
            continue
        in_flight[run.submit(run.workspace.check_sysprep, [d.desktop_id for d in batch])] = batch
        while len(in_flight) >= window:
            _settle_some(run, in_flight)
            window = run.settings.max_concurrency
    while in_flight:
        _settle_some(run, in_flight)


def _settle_some(run: Run, in_flight: InFlight) -> None:
    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
    for future in done:
        batch = in_flight.pop(future)
        try:
            infos = future.result()
        except ApiError as exc:
            run.failed([d.desktop_id for d in batch], exc)
        else:
            judge_batch(run, batch, infos)


def judge_batch(run: Run, batch: list[Desktop], infos: list[SysprepInfo]) -> None:
    entries: dict[str, list[SysprepInfo]] = {}
    for info in infos:
        entries.setdefault(info.desktop_id.lower(), []).append(info)
    policy, summary = run.settings.policy, run.summary
    compliant: list[str] = []
    for desktop in batch:
        given = entries.get(desktop.desktop_id.lower(), [])
        if len(given) <= 1:  # as nearly always: one entry, or none
            worst = given[0] if given else None
            reasons = judge(worst, policy)  # in REASONS order
        else:
            # Entries for one desktop that disagree: the worse judgement wins, so a failing entry never passes.
            judged = [(judge(info, policy), info) for info in given]
            reasons = [r for r in REASONS if any(r in rs for rs, _ in judged)]
            worst = next((info for rs, info in judged if rs), None)
            if len({(i.sysprep_version, i.support_hibernate, i.support_update_route) for i in given}) > 1:
                log.warning("conflicting Sysprep entries; the worse is taken", desktop_id=desktop.desktop_id)
        if reasons:
            summary.add_finding(
                Finding(
                    desktop_id=desktop.desktop_id,
                    reasons=reasons,
                    sysprep_version=_field(worst.sysprep_version if worst else None),
                    computer_name=_field(desktop.computer_name),
                    user_name=_field(desktop.user_name),
                )
            )
        else:
            compliant.append(desktop.desktop_id)
    summary.add_checked(len(batch), compliant)  # once a batch: each change to the summary (a model) has a cost


def ready(run: Run, desktops: Iterator[Desktop]) -> Iterator[Desktop]:
    """The desktops to check. Those exempt (EXEMPT_TAG, EXEMPT_DESKTOP_IDS) are counted and listed apart, busy or
    not (an accepted desktop is never reported); then those Workspace is working on are not ready."""
    rules = run.exemptions
    exempting = rules.any
    today = date.fromisoformat(run.summary.run_time[:10])
    for desktop in desktops:
        if exempting:
            exempt, ended = exemption(desktop.desktop_id, desktop.tags, rules, today)
            if exempt is not None:  # its texts come from answers: scrubbed and cut, for the exempt few only
                shown = {"why": _field(exempt.why), "computer_name": _field(desktop.computer_name)}
                run.summary.add_exempt(exempt.model_copy(update=shown))
                continue
            if ended is not None:  # ended, or its date unreadable: a person meant something; the log says what
                log.warning(
                    "an exemption does not hold; the desktop is checked", desktop_id=desktop.desktop_id, why=ended
                )
        if desktop.busy:
            run.unchecked(desktop.desktop_id, NOT_READY)
        else:
            yield desktop


def _field(value: str | None) -> str | None:
    """A text from an answer, as reports show it: scrubbed of secrets (an answer could echo the token), then cut."""
    return None if value is None else clip(redact(value), MAX_FIELD_CHARS)


def _batches(desktops: Iterator[Desktop], size: int) -> Iterator[list[Desktop]]:
    batch: list[Desktop] = []
    for desktop in desktops:
        batch.append(desktop)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
