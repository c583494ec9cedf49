"""Orchestration: from what the event asks for to a published report and a summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .errors import ApiError, DeliveryError
from .events import Check, Invocation, Skip, Sweep
from .logs import log
from .models import Desktop, Job
from .policy import judge
from .report import DEADLINE, NOT_READY, Finding, Summary, Unchecked, render
from .settings import Settings
from .smn import Smn
from .workspace import SYSPREP_BATCH, Workspace

PUBLISH_RESERVE_SECONDS = 10.0  # time kept back at the end of an invocation to publish what is known
JOB_POLL_FIRST, JOB_POLL_MAX = 2.0, 30.0
_JOB_FAILED = {"FAIL", "FAILED", "ERROR", "CANCELLED", "CANCELED"}
_JOB_DONE = {"SUCCESS", "PARTIAL_SUCCESS"} | _JOB_FAILED
_BUILDING = {"BUILD", "BUILDING", "CREATING", "PROVISIONING"}


@dataclass
class Clock:
    """Monotonic time and sleep, swapped for a fake in tests so that nothing waits for real."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass
class Deadline:
    """When the invocation must be done: the platform's remaining time, read once at the start."""

    clock: Clock
    at: float

    @classmethod
    def after(cls, clock: Clock, seconds: float) -> Deadline:
        return cls(clock, clock.now() + seconds)

    def left(self) -> float:
        return self.at - self.clock.now()


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
        policy=settings.policy.describe(),
        dry_run=settings.dry_run,
    )
    target = invocation.target
    if isinstance(target, Skip):
        log.info("event skipped", trigger=invocation.trigger, reason=target.reason)
        summary.skipped = target.reason
        return summary

    run = _Run(services, deadline, summary)
    desktops = run.sweep() if isinstance(target, Sweep) else run.event(target)
    run.judge_all(desktops)
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
    def __init__(self, services: Services, deadline: Deadline, summary: Summary) -> None:
        self.services = services
        self.workspace = services.workspace
        self.deadline = deadline
        self.summary = summary
        self.refused: ApiError | None = None

    def out_of_time(self) -> bool:
        return self.deadline.left() < PUBLISH_RESERVE_SECONDS

    # Finding the desktops -------------------------------------------------------------------

    def sweep(self) -> Iterator[Desktop]:
        listed = 0
        try:
            for page in self.workspace.pages():
                for desktop in page.desktops:
                    listed += 1
                    if (desktop.status or "").upper() in _BUILDING:
                        self.unchecked(desktop.desktop_id, NOT_READY)
                    else:
                        yield desktop
                if self.out_of_time():
                    self.fail(f"listing stopped after {listed:,} desktops: the invocation ran out of time")
                    return
        except ApiError as exc:
            self.fail(f"listing desktops stopped after {listed:,}: {exc}")

    def event(self, target: Check) -> Iterator[Desktop]:
        for desktop_id in target.desktop_ids:
            yield Desktop(desktop_id=desktop_id)
        if target.job_ids:
            yield from self.from_jobs(target.job_ids, target.desktop_ids)

    def from_jobs(self, job_ids: tuple[str, ...], known: tuple[str, ...]) -> Iterator[Desktop]:
        """Wait for the creation jobs to end (bounded), then hand over the desktops they made."""
        settings, clock = self.services.settings, self.services.clock
        wait_until = min(
            clock.now() + settings.job_wait_seconds,
            self.deadline.at - PUBLISH_RESERVE_SECONDS,
        )
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
                if (job.status or "").upper() in _JOB_DONE:
                    pending.remove(job_id)
            if not pending or clock.now() + delay > wait_until:
                break
            clock.sleep(delay)
            delay = min(delay * 2, JOB_POLL_MAX)
        skip = set(known)
        for job_id, job in seen.items():
            for desktop in self._job_desktops(job_id, job):
                if desktop.desktop_id not in skip:
                    skip.add(desktop.desktop_id)
                    yield desktop

    def _job_desktops(self, job_id: str, job: Job) -> Iterator[Desktop]:
        nameless = 0
        for sub in job.sub_jobs or [job]:  # a one-desktop job may carry its entities itself
            status = (sub.status or "").upper()
            entities = sub.entities
            desktop_id = entities.desktop_id.lower() if entities and entities.desktop_id else None
            if status == "SUCCESS" and entities and desktop_id:
                yield Desktop(
                    desktop_id=desktop_id,
                    computer_name=entities.desktop_name,
                    user_name=entities.user_name,
                )
            elif status in _JOB_FAILED:
                log.warning(
                    "desktop creation failed; not judged",
                    job_id=job_id,
                    sub_job_id=sub.id,
                    desktop_id=desktop_id,
                    status=sub.status,
                    fail_reason=sub.fail_reason,
                )
            elif desktop_id:
                self.unchecked(desktop_id, NOT_READY)
            else:
                nameless += 1
        if nameless:
            self.fail(f"job {job_id}: {nameless} desktop(s) still being created have no id yet; not checked")

    # Judging ----------------------------------------------------------------------------------

    def judge_all(self, desktops: Iterator[Desktop]) -> None:
        batch: list[Desktop] = []
        for desktop in desktops:
            batch.append(desktop)
            if len(batch) == SYSPREP_BATCH:
                self.judge_batch(batch)
                batch = []
        if batch:
            self.judge_batch(batch)

    def judge_batch(self, batch: list[Desktop]) -> None:
        if self.out_of_time():
            self.summary.incomplete = True
            for desktop in batch:
                self.unchecked(desktop.desktop_id, DEADLINE)
            return
        if self.refused is not None:  # credentials or permissions are wrong: more calls cannot succeed
            for desktop in batch:
                self.unchecked(desktop.desktop_id, self.refused.short)
            return
        try:
            infos = self.workspace.check_sysprep([d.desktop_id for d in batch])
        except ApiError as exc:
            log.error("sysprep check failed for a batch", error=str(exc), desktops=len(batch))
            if exc.status in (401, 403):
                self.refused = exc
                self.fail(f"stopped checking: {exc}. Check the agency's keys and its workspace permissions")
            for desktop in batch:
                self.unchecked(desktop.desktop_id, exc.short)
            return
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
                        sysprep_version=info.sysprep_version if info else None,
                        computer_name=desktop.computer_name,
                        user_name=desktop.user_name,
                    )
                )
            else:
                self.summary.compliant += 1

    # Bookkeeping ------------------------------------------------------------------------------

    def unchecked(self, desktop_id: str, reason: str) -> None:
        self.summary.unchecked.append(Unchecked(desktop_id=desktop_id, reason=reason))

    def fail(self, error: str) -> None:
        log.error(error)
        self.summary.errors.append(error)
        self.summary.incomplete = True


def _publish(services: Services, summary: Summary) -> None:
    if not summary.needs_notice:
        return
    messages = render(summary)
    if summary.dry_run:
        log.info("dry run: nothing published", messages=len(messages))
        return
    topic = services.settings.smn_topic_urn
    assert topic is not None  # settings require it unless DRY_RUN
    for message in messages:
        try:
            summary.published.append(services.smn.publish(topic, message.subject, message.message))
        except ApiError as exc:
            raise DeliveryError(
                f"findings not delivered to {topic}: {exc}. Check that the topic exists and that the agency "
                f"may smn:topic:publish; the invocation fails so that the platform retries it"
            ) from None
