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
from typing import TYPE_CHECKING, Any, TypeVar

from . import metrics
from .change_report import ChangeView
from .change_report import fingerprint as change_fingerprint
from .errors import ApiError, DeliveryError
from .events import Invocation, Skip, Sweep
from .logs import log
from .notification import Notification, render, render_view
from .permissions import needed_by
from .report import DEADLINE, PolicyView, Summary, fingerprint
from .settings import Settings
from .smn import Smn
from .timing import Clock, Deadline
from .workspace import Workspace

PUBLISH_RESERVE_SECONDS = 10.0  # kept back from the Workspace calls to publish what is known
STATE_RESERVE_SECONDS = 20.0  # kept back too with a run history: to read and write it in OBS, and for Cloud Eye
STATE_CALL_SECONDS = 5.0  # one OBS call at most
RETURN_MARGIN_SECONDS = 2.0  # kept back from publishing for the handler to return before the platform's timeout
MAX_ERROR_CHARS, MAX_ERRORS = 600, 20  # errors are in every notification part: bounded, and few
CALLS_AHEAD = 2  # calls made ahead of the one being handled: enough to keep the sysprep calls fed
T = TypeVar("T")
A = TypeVar("A")

if TYPE_CHECKING:
    from .change_alerts import RunMemory


@dataclass
class Services:
    settings: Settings
    workspace: Workspace
    smn: Smn
    clock: Clock = field(default_factory=Clock)


def execute(invocation: Invocation, services: Services, deadline: Deadline) -> Summary:
    from . import jobs, judging, listing  # the seams of the work; they use Run

    settings = services.settings
    started = services.clock.wall()
    summary = Summary(
        trigger=invocation.trigger,
        region=settings.region,
        project_id=settings.project_id,
        run_time=started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        policy=PolicyView.of(settings.policy),
        dry_run=settings.dry_run,
    )
    target = invocation.target
    if isinstance(target, Skip):
        log.info("event skipped", trigger=invocation.trigger, reason=target.reason)
        summary.skipped = target.reason
        return summary

    sweep = isinstance(target, Sweep)
    if not sweep and settings.state_bucket:
        summary.keep_compliant_ids()
    with ThreadPoolExecutor(settings.max_concurrency, thread_name_prefix="sysprep") as pool:
        run = Run(services, deadline, summary, pool)
        desktops = listing.sweep(run) if sweep else jobs.event_desktops(run, target)
        judging.judge_all(run, desktops)
    summary.finish()
    memory = None
    if settings.state_bucket:
        from .change_alerts import RunMemory  # and, through it, the OBS SDK: only with a history

        full_day = sweep and target.weekday is not None and target.weekday == settings.full_report_day
        memory = RunMemory(
            settings,
            services.workspace.client.credentials,  # type: ignore[arg-type]
            summary,
            started=started,
            sweep=sweep,
            listed=run.listed,
            full_report=sweep and (target.full_report or full_day),
            seconds=min(STATE_CALL_SECONDS, max(1.0, deadline.left(RETURN_MARGIN_SECONDS) / 4)),
            clock=services.clock,
        )
    _report(services, summary, memory)
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
        self.listed: Callable[[str], bool] = lambda desktop_id: False  # did a sweep list this desktop

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


def _report(services: Services, summary: Summary, memory: RunMemory | None) -> None:
    """Publish what the run must (with a history, what it decides), then record that it did, and the metrics."""
    settings = services.settings
    delivered = False
    decision = memory.decide() if memory is not None else None
    try:
        if decision is None:
            full = summary.needs_notice
        else:
            summary.notified = f"{decision.mode}: {decision.why}"
            full = decision.full and summary.needs_notice
            changes = decision.changes
            if changes is not None:
                summary.changes = changes.counts()
                summary.fingerprint = change_fingerprint(summary, changes)
                _publish(services, summary, render_view(ChangeView(summary, changes)))
        if full:
            summary.fingerprint = fingerprint(summary)
            _publish(services, summary, render(summary))
        delivered = True
    finally:
        if memory is not None:
            memory.finish(delivered, decision.mode if decision else "full")
        if settings.metrics:
            summary.metrics = metrics.send(
                services.workspace.client, settings.endpoint("ces"), summary, keep=RETURN_MARGIN_SECONDS
            )


def _publish(services: Services, summary: Summary, messages: Iterable[Notification]) -> None:
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
