"""An event's desktops: those it names and those its jobs made or re-imaged, once the jobs are done, each as
Workspace reports it now. A desktop Workspace is still working on is never judged."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .client import MIN_ATTEMPT_SECONDS
from .errors import ApiError
from .events import Check
from .logs import log
from .models import Desktop, Job, is_desktop_id
from .report import NOT_FOUND, NOT_READY
from .workspace import DETAIL_IDS

if TYPE_CHECKING:
    from .orchestrator import Run

JOB_POLL_FIRST, JOB_POLL_MAX = 2.0, 30.0
# ShowJob's statuses are WAITING, RUNNING, SUCCESS and FAILED; a job (or sub-job) in any other is not done.
JOB_SUCCESS, JOB_FAILED = "SUCCESS", "FAILED"


def event_desktops(run: Run, work: Check) -> Iterator[Desktop]:
    if work.jobs_not_followed:
        run.fail(
            f"the trace names {len(work.job_ids) + work.jobs_not_followed:,} jobs; the first "
            f"{len(work.job_ids):,} were followed and {work.jobs_not_followed:,} were not: the next sweep checks "
            "their desktops",
            "jobs_not_followed",
        )
    made: list[str] = []
    waiting: list[str] = []
    if work.job_ids:
        made, waiting = _from_jobs(run, work.job_ids)
        for desktop_id in waiting:
            run.unchecked(desktop_id, NOT_READY)
    skip = set(waiting)
    yield from current(run, [d for d in dict.fromkeys([*work.desktop_ids, *made]) if d not in skip])


def current(run: Run, desktop_ids: list[str]) -> Iterator[Desktop]:
    """These desktops' state (ListDesktopsDetail): one it does not list is not found; one Workspace is still working
    on is not ready (judging.ready): neither is judged, so that a desktop being built or rebuilt never raises an
    alarm."""
    batches = [desktop_ids[i : i + DETAIL_IDS] for i in range(0, len(desktop_ids), DETAIL_IDS)]
    if not batches:
        return
    # The first call goes alone: dead credentials or a missing permission cost one rejected call, not a volley.
    first = run.submit(run.workspace.desktops, batches[0])
    futures = itertools.chain([first], run.ahead(run.workspace.desktops, batches[1:]))
    for batch in batches:
        if run.stopped is not None:  # checked before the next call is asked for
            run.give_up(batch, run.stopped)
            continue
        try:
            listed = {d.desktop_id.lower(): d for d in next(futures).result()}
        except ApiError as exc:
            run.failed(batch, exc)
            continue
        for desktop_id in batch:
            desktop = listed.get(desktop_id)
            if desktop is None:
                run.unchecked(desktop_id, NOT_FOUND)
            else:
                yield desktop.with_id(desktop_id)  # a busy one too: judging.ready sets it apart


def _from_jobs(run: Run, job_ids: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Wait for the jobs to end (bounded); then the desktops they made or re-imaged, and those still unfinished.
    Failed ones are logged, not judged."""
    clock = run.clock
    # The last poll must still find time for itself and for a sysprep check before the publishing reserve.
    last_poll = run.deadline.at - run.workspace.keep - 2 * MIN_ATTEMPT_SECONDS
    wait_until = min(clock.now() + run.settings.job_wait_seconds, last_poll)
    pending, seen, delay = list(job_ids), {}, JOB_POLL_FIRST
    while pending:
        for job_id in list(pending):
            try:
                job = run.workspace.job(job_id)
            except ApiError as exc:
                run.fail(f"job {job_id}: {exc}", "job")
                pending.remove(job_id)
                continue
            seen[job_id] = job
            if (job.status or "").upper() in (JOB_SUCCESS, JOB_FAILED):
                pending.remove(job_id)
        left = wait_until - clock.now()
        if not pending or left <= 0:
            break
        clock.sleep(min(delay, left))  # the last wait is cut short, so that the last poll is at the limit
        delay = min(delay * 2, JOB_POLL_MAX)
    made: list[str] = []
    unfinished: list[str] = []
    for job_id, job in seen.items():
        _sort_sub_jobs(run, job_id, job, made, unfinished)
    # A desktop in two sub-jobs (or two jobs) counts once; unfinished in any of them, it is not ready.
    waiting = list(dict.fromkeys(unfinished))
    return [d for d in dict.fromkeys(made) if d not in set(waiting)], waiting


def _sort_sub_jobs(run: Run, job_id: str, job: Job, made: list[str], unfinished: list[str]) -> None:
    nameless = 0
    for sub in job.sub_jobs:
        status = (sub.status or "").upper()
        desktop_id = sub.entities.desktop_id.strip().lower() if sub.entities and sub.entities.desktop_id else None
        if status == JOB_FAILED:
            log.warning(
                "desktop operation failed; not judged",
                job_id=job_id,
                sub_job_id=sub.id,
                desktop_id=desktop_id,
                error_code=sub.error_code,
                fail_reason=sub.fail_reason,
            )
        elif desktop_id is None or not is_desktop_id(desktop_id):
            nameless += 1
        else:
            (made if status == JOB_SUCCESS else unfinished).append(desktop_id)
    if not job.sub_jobs and (job.status or "").upper() != JOB_FAILED:
        run.fail(f"job {job_id} ({job.status}) names no desktop yet; its desktops were not checked", "job")
    if nameless:
        run.fail(f"job {job_id}: {nameless} desktop(s) still being made have no id yet; not checked", "job")
