"""Orchestration: from what the event asks for to a published report and a summary.

The work is split along its seams: `listing` finds a sweep's desktops, `jobs` an event's (once its jobs are
done), `judging` checks them in batches. `Run` holds what they share: the pool, the deadline, the summary.
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

from .errors import ApiError, DeliveryError
from .events import Invocation, Skip, Sweep
from .logs import log
from .notification import render
from .permissions import needed_by
from .report import DEADLINE, PolicyView, Summary, fingerprint
from .settings import Settings
from .smn import Smn
from .timing import Clock, Deadline
from .workspace import Workspace

PUBLISH_RESERVE_SECONDS = 10.0  # kept back from the Workspace calls to publish what is known
RETURN_MARGIN_SECONDS = 2.0  # kept back from publishing for the handler to return before the platform's timeout
MAX_ERROR_CHARS, MAX_ERRORS = 600, 20  # errors are in every notification part: bounded, and few
CALLS_AHEAD = 2  # calls made ahead of the one being handled: enough to keep the sysprep calls fed
T = TypeVar("T")
A = TypeVar("A")


@dataclass
class Services:
    settings: Settings
    workspace: Workspace
    smn: Smn
    clock: Clock = field(default_factory=Clock)


def execute(invocation: Invocation, services: Services, deadline: Deadline) -> Summary:
    from . import jobs, judging, listing  # the seams of the work; they use Run

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
        run = Run(services, deadline, summary, pool)
        desktops = listing.sweep(run) if isinstance(target, Sweep) else jobs.event_desktops(run, target)
        judging.judge_all(run, desktops)
    summary.finish()
    _publish(services, summary)
    log.info(
        "run finished",
        trigger=summary.trigger,
        checked=summary.checked,
        non_compliant=summary.counts.non_compliant,
        unchecked=summary.counts.unchecked,
        incomplete=summary.incomplete,
        published=len(summary.published),
    )
    return summary


class Run:
    """One invocation's work. Results are settled on the calling thread only; the pool just makes calls."""

    def __init__(self, services: Services, deadline: Deadline, summary: Summary, pool: ThreadPoolExecutor) -> None:
        self.services = services
        self.settings = services.settings
        self.clock = services.clock
        self.pool = pool
        self.workspace = services.workspace
        self.deadline = deadline
        self.summary = summary
        self.stopped: ApiError | None = None  # refused, or out of time: no further call can succeed

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run on the pool with this thread's context, so that log lines there keep the request id."""
        return self.pool.submit(contextvars.copy_context().run, fn, *args)

    def ahead(self, fn: Callable[[A], T], args: Iterable[A]) -> Iterator[Future[T]]:
        """fn(arg) for each arg, handed over in order, with up to CALLS_AHEAD more calls in flight. No call is
        made once the run has stopped."""
        queue: deque[Future[T]] = deque()
        try:
            for arg in args:
                if self.stopped is not None:
                    break
                queue.append(self.submit(fn, arg))
                if len(queue) > CALLS_AHEAD:
                    yield queue.popleft()
            while queue:
                yield queue.popleft()
        finally:
            for future in queue:
                future.cancel()

    def stop(self, exc: ApiError) -> bool:
        """Whether `exc` stops the run (refused credentials or permission, or out of time); the first says so."""
        if not (exc.refused or exc.out_of_time):
            return False
        if self.stopped is None:
            self.stopped = exc
            if exc.refused:
                check = "the agency's keys" if exc.status == 401 else needed_by(exc.call)
                self.fail(f"stopped checking: {exc}. Check {check}", "refused")
            else:
                self.summary.incomplete = True
        return True

    def give_up(self, desktop_ids: Iterable[str], exc: ApiError) -> None:
        """These desktops cannot be checked because of `exc`."""
        reason = DEADLINE if exc.out_of_time else exc.short
        for desktop_id in desktop_ids:
            self.summary.add_unchecked(desktop_id, reason)

    def failed(self, desktop_ids: list[str], exc: ApiError) -> None:
        """A call about these desktops failed for good: they are unchecked, and the run stops if it must."""
        if not self.stop(exc):
            log.error("a batch of desktops could not be checked", error=str(exc), desktops=len(desktop_ids))
        self.give_up(desktop_ids, exc)

    def unchecked(self, desktop_id: str, reason: str) -> None:
        self.summary.add_unchecked(desktop_id, reason)

    def fail(self, error: str, kind: str) -> None:
        log.error(error, kind=kind)
        self.summary.fail(error, kind, MAX_ERROR_CHARS, MAX_ERRORS)


def _publish(services: Services, summary: Summary) -> None:
    if not summary.needs_notice:
        return
    summary.fingerprint = fingerprint(summary)
    messages = render(summary)
    if summary.dry_run:  # what would have been sent, in the logs: that is what a dry run is for
        for message in messages:
            log.info("dry run: would publish", subject=message.subject, text=message.protocols["default"])
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
