"""Orchestration: from what the event asks for to a published report and a summary."""

from __future__ import annotations

import contextvars
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

from .client import MIN_ATTEMPT_SECONDS
from .errors import ApiError, DeliveryError
from .events import Check, Invocation, Skip, Sweep, is_desktop_id
from .logs import log
from .models import Desktop, DesktopPage, SysprepInfo
from .notification import render
from .permissions import needed_by
from .policy import judge
from .report import DEADLINE, NOT_FOUND, NOT_READY, Finding, PolicyView, Summary, Unchecked, fingerprint
from .settings import Settings
from .smn import Smn
from .text import clip
from .timing import Clock, Deadline
from .workspace import DETAIL_IDS, SYSPREP_BATCH, Workspace

PUBLISH_RESERVE_SECONDS = 10.0  # kept back from the Workspace calls to publish what is known
RETURN_MARGIN_SECONDS = 2.0  # kept back from publishing for the handler to return before the platform's timeout
JOB_POLL_FIRST, JOB_POLL_MAX = 2.0, 30.0
# ShowJob's statuses are WAITING, RUNNING, SUCCESS and FAILED; a job (or sub-job) in any other is not done.
JOB_SUCCESS, JOB_FAILED = "SUCCESS", "FAILED"
T = TypeVar("T")
A = TypeVar("A")
# Reasons and errors come from answers; bounded, so that a notification part always has room for desktops.
MAX_REASON_CHARS, MAX_ERROR_CHARS, MAX_ERRORS, MAX_FIELD_CHARS = 300, 600, 20, 120
PAGES_AHEAD = 2  # list pages fetched ahead of the one being judged: enough to keep the sysprep calls fed


@dataclass
class Services:
    settings: Settings
    workspace: Workspace
    smn: Smn
    clock: Clock = field(default_factory=Clock)


def execute(invocation: Invocation, services: Services, deadline: Deadline) -> Summary:
    settings = services.settings
    summary = Summary(
        trigger=invocation.trigger,
        region=settings.region,
        project_id=settings.project_id,
        run_time=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        policy=PolicyView.of(settings.policy),
        dry_run=settings.dry_run,
    )
    target = invocation.target
    if isinstance(target, Skip):
        log.info("event skipped", trigger=invocation.trigger, reason=target.reason)
        summary.skipped = target.reason
        return summary

    with ThreadPoolExecutor(settings.max_concurrency, thread_name_prefix="sysprep") as pool:
        run = _Run(services, deadline, summary, pool)
        desktops = run.sweep() if isinstance(target, Sweep) else run.event(target)
        run.judge_all(desktops)
    summary.non_compliant.sort(key=lambda f: f.desktop_id)  # calls finish in any order; reports should not
    summary.unchecked.sort(key=lambda u: u.desktop_id)
    _publish(services, summary)
    log.info(
        "run finished",
        trigger=summary.trigger,
        checked=summary.checked,
        non_compliant=len(summary.non_compliant),
        unchecked=len(summary.unchecked),
        incomplete=summary.incomplete,
        published=len(summary.published),
    )
    return summary


class _Run:
    """One invocation's work. Results are settled on the calling thread only; the pool just makes calls."""

    def __init__(self, services: Services, deadline: Deadline, summary: Summary, pool: ThreadPoolExecutor) -> None:
        self.services = services
        self.pool = pool
        self.workspace = services.workspace
        self.deadline = deadline
        self.summary = summary
        self.stopped: ApiError | None = None

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run on the pool with this thread's context, so that log lines there keep the request id."""
        return self.pool.submit(contextvars.copy_context().run, fn, *args)

    # Finding the desktops -------------------------------------------------------------------

    def sweep(self) -> Iterator[Desktop]:
        listed, total = 0, None
        # Offsets shift when desktops come or go during a sweep, so a desktop can appear on two adjacent pages:
        # remembering the ids of the last two pages (not the whole fleet) keeps memory flat.
        recent: deque[set[str]] = deque(maxlen=2)
        try:
            for page in self._pages():
                total = page.total_count if page.total_count is not None else total
                ids = {d.desktop_id for d in page.desktops}
                for desktop in page.desktops:
                    if any(desktop.desktop_id in seen for seen in recent):
                        continue
                    listed += 1
                    if desktop.busy:
                        self.unchecked(desktop.desktop_id, NOT_READY)
                    else:
                        yield desktop
                recent.append(ids)
        except ApiError as exc:
            self.summary.unlisted = max(0, total - listed) if total is not None else None
            of = f" of {total:,}" if total is not None else ""
            self.fail(f"listing desktops stopped after {listed:,}{of}: {exc}")

    def _pages(self) -> Iterator[DesktopPage]:
        """Every page, in order: the first alone (it gives total_count), then the pages that count announces,
        fetched a few ahead, then, one after another, any that desktops created meanwhile pushed further."""
        last = first = self.workspace.list_page(0)
        yield first
        step, count = len(first.desktops), first.total_count
        if not step:
            return
        offset = step
        if count is not None:
            announced = count
            for future in self._ahead(self.workspace.list_page, range(step, announced, step)):
                page = future.result()
                count = max(count, page.total_count or 0)
                yield page
            offset = max(step, -(-announced // step) * step)  # past the pages the first count announced
        # With a count: until it is reached. Without one: until a page comes back short.
        while (offset < count) if count is not None else len(last.desktops) == step:
            last = self.workspace.list_page(offset)
            if not last.desktops:
                return
            offset += len(last.desktops)
            count = None if count is None else max(count, last.total_count or 0)
            yield last

    def _ahead(self, fn: Callable[[A], T], args: Iterable[A]) -> Iterator[Future[T]]:
        """fn(arg) for each arg, handed over in order, with up to PAGES_AHEAD more calls in flight."""
        ahead: deque[Future[T]] = deque()
        try:
            for arg in args:
                ahead.append(self.submit(fn, arg))
                if len(ahead) > PAGES_AHEAD:
                    yield ahead.popleft()
            while ahead:
                yield ahead.popleft()
        finally:
            for future in ahead:
                future.cancel()

    def event(self, target: Check) -> Iterator[Desktop]:
        """The desktops an event names, once the jobs it names are done, as Workspace reports them now."""
        made: list[str] = []
        waiting: set[str] = set()
        if target.job_ids:
            made, unfinished = self.from_jobs(target.job_ids)
            for desktop_id in unfinished:
                self.unchecked(desktop_id, NOT_READY)
            waiting.update(unfinished)
        ids = [d for d in dict.fromkeys([*target.desktop_ids, *made]) if d not in waiting]
        yield from self.current(ids)

    def current(self, desktop_ids: list[str]) -> Iterator[Desktop]:
        """These desktops' state (ListDesktopsDetail): one Workspace is still working on is not ready, one it does
        not list is not found; neither is judged, so that a desktop being built or rebuilt never raises an alarm."""
        batches = [desktop_ids[i : i + DETAIL_IDS] for i in range(0, len(desktop_ids), DETAIL_IDS)]
        if not batches:
            return
        # The first call goes alone: dead credentials or a missing permission cost one rejected call, not a volley.
        first = self.submit(self.workspace.desktops, batches[0])
        futures = itertools.chain([first], self._ahead(self.workspace.desktops, batches[1:]))
        for batch in batches:
            if self.stopped is not None:  # checked before the next call is asked for
                self.give_up([Desktop(desktop_id=d) for d in batch], self.stopped)
                continue
            try:
                listed = {d.desktop_id.lower(): d for d in next(futures).result()}
            except ApiError as exc:
                self.failed_batch([Desktop(desktop_id=d) for d in batch], exc)
                continue
            for desktop_id in batch:
                desktop = listed.get(desktop_id)
                if desktop is None:
                    self.unchecked(desktop_id, NOT_FOUND)
                elif desktop.busy:
                    self.unchecked(desktop_id, NOT_READY)
                else:
                    yield desktop.model_copy(update={"desktop_id": desktop_id})

    def from_jobs(self, job_ids: tuple[str, ...]) -> tuple[list[str], list[str]]:
        """Wait for the jobs to end (bounded); then the desktops they made or re-imaged, and those still unfinished.
        Failed ones are logged, not judged."""
        settings, clock = self.services.settings, self.services.clock
        # The last poll must still find time for itself and for a sysprep check before the publishing reserve.
        last_poll = self.deadline.at - self.workspace.keep - 2 * MIN_ATTEMPT_SECONDS
        wait_until = min(clock.now() + settings.job_wait_seconds, last_poll)
        pending, seen, delay = list(job_ids), {}, JOB_POLL_FIRST
        while pending:
            for job_id in list(pending):
                try:
                    job = self.workspace.job(job_id)
                except ApiError as exc:
                    self.fail(f"job {job_id}: {exc}")
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
            nameless = 0
            for sub in job.sub_jobs:
                status = (sub.status or "").upper()
                desktop_id = (
                    sub.entities.desktop_id.strip().lower() if sub.entities and sub.entities.desktop_id else None
                )
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
                self.fail(f"job {job_id} ({job.status}) names no desktop yet; its desktops were not checked")
            if nameless:
                self.fail(f"job {job_id}: {nameless} desktop(s) still being made have no id yet; not checked")
        return made, unfinished

    # Judging ----------------------------------------------------------------------------------

    def judge_all(self, desktops: Iterator[Desktop]) -> None:
        """Check batches of 100 with calls in flight up to MAX_CONCURRENCY. The first call goes alone, so
        that dead credentials cost one rejected call, not a volley of them."""
        in_flight: dict[Future[list[SysprepInfo]], list[Desktop]] = {}
        window = 1
        for batch in _batches(desktops, SYSPREP_BATCH):
            if self.stopped is not None:  # out of time, or refused: further calls cannot succeed
                self.give_up(batch, self.stopped)
                continue
            in_flight[self.submit(self.workspace.check_sysprep, [d.desktop_id for d in batch])] = batch
            while len(in_flight) >= window:
                self._settle_some(in_flight)
                window = self.services.settings.max_concurrency
        while in_flight:
            self._settle_some(in_flight)

    def _settle_some(self, in_flight: dict[Future[list[SysprepInfo]], list[Desktop]]) -> None:
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        for future in done:
            batch = in_flight.pop(future)
            try:
                infos = future.result()
            except ApiError as exc:
                self.failed_batch(batch, exc)
            else:
                self.judge_batch(batch, infos)

    def failed_batch(self, batch: list[Desktop], exc: ApiError) -> None:
        stops = exc.refused or exc.out_of_time
        if not stops:
            log.error("a batch of desktops could not be checked", error=str(exc), desktops=len(batch))
        elif self.stopped is None:
            self.stopped = exc
            if exc.refused:
                check = "the agency's keys" if exc.status == 401 else needed_by(exc.call)
                self.fail(f"stopped checking: {exc}. Check {check}")
            else:
                self.summary.incomplete = True
        self.give_up(batch, exc)

    def give_up(self, batch: list[Desktop], exc: ApiError) -> None:
        reason = DEADLINE if exc.out_of_time else exc.short
        for desktop in batch:
            self.unchecked(desktop.desktop_id, reason)

    def judge_batch(self, batch: list[Desktop], infos: list[SysprepInfo]) -> None:
        by_id = {info.desktop_id.lower(): info for info in infos}
        policy = self.services.settings.policy
        for desktop in batch:
            info = by_id.get(desktop.desktop_id.lower())
            reasons = judge(info, policy)
            self.summary.checked += 1
            if reasons:
                self.summary.non_compliant.append(
                    Finding(
                        desktop_id=desktop.desktop_id,
                        reasons=reasons,
                        sysprep_version=_field(info.sysprep_version if info else None),
                        computer_name=_field(desktop.computer_name),
                        user_name=_field(desktop.user_name),
                    )
                )
            else:
                self.summary.compliant += 1

    # Bookkeeping ------------------------------------------------------------------------------

    def unchecked(self, desktop_id: str, reason: str) -> None:
        self.summary.unchecked.append(Unchecked(desktop_id=desktop_id, reason=clip(reason, MAX_REASON_CHARS)))

    def fail(self, error: str) -> None:
        log.error(error)
        if len(self.summary.errors) < MAX_ERRORS:  # each is in every part of the notification: keep them few
            self.summary.errors.append(clip(error, MAX_ERROR_CHARS))
        self.summary.incomplete = True


def _field(value: str | None) -> str | None:
    return None if value is None else clip(value, MAX_FIELD_CHARS)


def _batches(desktops: Iterator[Desktop], size: int) -> Iterator[list[Desktop]]:
    batch: list[Desktop] = []
    for desktop in desktops:
        batch.append(desktop)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _publish(services: Services, summary: Summary) -> None:
    if not summary.needs_notice:
        return
    summary.fingerprint = fingerprint(summary)
    messages = render(summary)
    if summary.dry_run:
        log.info("dry run: nothing published", messages=sum(1 for _ in messages))
        return
    topic = services.settings.smn_topic_urn
    assert topic is not None  # settings require it unless DRY_RUN
    for message in messages:
        try:
            summary.published.append(services.smn.publish(topic, message))
        except ApiError as exc:
            hint = (
                "the credentials were rejected: check the agency (or HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK)"
                if exc.status == 401
                else f"check that the topic exists and {needed_by(exc.call)}"
            )
            raise DeliveryError(
                f"findings not delivered to {topic}: {exc}. The invocation fails so that the platform retries it; "
                f"{hint}"
            ) from None
