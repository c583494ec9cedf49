"""Orchestration: from what the event asks for to a published report and a summary.

The work is split along its seams: `listing` finds a sweep's desktops, `jobs` an event's (once its jobs are
done), `judging` checks them in batches. `Run` holds what they share: the pool, the deadline, the summary.
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from . import metrics
from .errors import ApiError, DeliveryError
from .events import Invocation, Skip, Sweep
from .exemptions import Rules
from .logs import log
from .notification import Notification, render, render_view
from .permissions import ACTIONS, needed_by
from .report import DEADLINE, PolicyView, Summary, fingerprint
from .settings import Settings
from .smn import Smn
from .targets import Target
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
    from .client import SignedClient
    from .estate import EstateSummary


class Services:
    """What an instance builds once, on its first invocation, and reuses: the settings and the adapters, with the
    function's own keys."""

    def __init__(
        self,
        settings: Settings,
        workspace: Workspace,
        smn: Smn,
        clock: Clock | None = None,
        places: dict[str, Workspace] | None = None,
    ) -> None:
        self.settings = settings
        self.workspace = workspace  # PROJECT_ID's
        self.smn = smn
        self.clock = clock or Clock()
        self.places = {} if places is None else places  # other targets' Workspace adapters, by key

    @property
    def client(self) -> SignedClient:
        """The client signing with the function's own keys (SMN, OBS, Cloud Eye, IAM, FunctionGraph)."""
        return self.smn.client


class Origin(NamedTuple):
    """What the invocation's context says of it: its request id, and this function's URN (for a fan-out)."""

    request_id: str | None = None
    function_urn: str | None = None


NO_ORIGIN = Origin()


def execute(
    invocation: Invocation, services: Services, deadline: Deadline, origin: Origin = NO_ORIGIN
) -> Summary | EstateSummary:
    """The sweep or check the event asks for: of one place, or of each of TARGETS (fanned out, or in turn)."""
    work, settings = invocation.work, services.settings
    if isinstance(work, Skip):
        log.info("event skipped", trigger=invocation.trigger, reason=work.reason)
        summary = new_summary(invocation, services, settings.home)
        summary.skipped = work.reason
        return summary
    if isinstance(work, Sweep):
        from . import estate

        targets = estate.targets(services, deadline)
        if work.target is not None:  # one target's share of a fanned-out sweep, or asked for by hand
            target = estate.configured(targets, work.target, settings.home)
            log.info("one target's sweep", target=target.label, dispatched_by=work.dispatched_by)
            return run_place(invocation, services, deadline, target)
        if len(targets) > 1 and settings.fan_out:
            from . import dispatch

            return dispatch.fan_out(invocation, services, deadline, targets, origin)
        if len(targets) > 1:
            return estate.one_after_another(invocation, services, deadline, targets)
        if targets:
            return run_place(invocation, services, deadline, targets[0])
    return run_place(invocation, services, deadline, settings.home)


def new_summary(invocation: Invocation, services: Services, target: Target) -> Summary:
    settings = services.settings
    return Summary(
        trigger=invocation.trigger,
        region=target.region,
        project_id=target.project_id,
        account=target.account,
        target=target.name,
        run_time=services.clock.wall().strftime("%Y-%m-%dT%H:%M:%SZ"),
        policy=PolicyView.of(settings.policy),
        dry_run=settings.dry_run,
    )


def run_place(invocation: Invocation, services: Services, deadline: Deadline, target: Target) -> Summary:
    """One project's sweep, or an event's desktops in it: judged, reported, recorded."""
    from . import estate, jobs, judging, listing  # the seams of the work; they use Run

    settings, work = services.settings, invocation.work
    started = services.clock.wall()
    summary = new_summary(invocation, services, target)
    sweep = isinstance(work, Sweep)
    if not sweep and settings.state_bucket:
        summary.keep_compliant_ids()
    with ThreadPoolExecutor(settings.max_concurrency, thread_name_prefix="sysprep") as pool:
        run = Run(services, deadline, summary, pool, target)
        try:
            run.workspace = estate.workspace_for(services, target, deadline)
        except ApiError as exc:  # the member account's agency refused, say: this target's report says so
            summary.unlisted = None  # nothing was listed: how many there are is unknown
            hint = (
                f". Check that account {target.account}'s agency {target.agency} trusts this account and grants "
                f"docs/iam-member-account.json in project {target.project_id}, and that the function's agency "
                "grants iam:agencies:assume on it"
                if exc.refused
                else ""  # IAM failed, or the deadline came: nothing to change, the next sweep tries again
            )
            run.fail(f"could not reach {summary.where}: {exc}{hint}", "agency")
        else:
            run.exemptions = estate.exemption_rules(services, deadline, run)
            desktops = listing.sweep(run) if sweep else jobs.event_desktops(run, work)  # type: ignore[arg-type]
            judging.judge_all(run, judging.ready(run, desktops))
    summary.finish()
    memory = None
    if settings.state_bucket:
        from .change_alerts import RunMemory  # and, through it, the OBS SDK: only with a history

        full_day = sweep and work.weekday is not None and work.weekday == settings.full_report_day  # type: ignore[union-attr]
        memory = RunMemory(
            settings,
            services.client.credentials,  # type: ignore[arg-type]
            summary,
            started=started,
            sweep=sweep,
            listed=run.listed,
            full_report=sweep and (work.full_report or full_day),  # type: ignore[union-attr]
            seconds=min(STATE_CALL_SECONDS, max(1.0, deadline.left(RETURN_MARGIN_SECONDS) / 4)),
            clock=services.clock,
        )
    _report(services, summary, memory)
    log.info(
        "run finished",
        trigger=summary.trigger,
        target=summary.where,
        checked=summary.checked,
        non_compliant=summary.counts.non_compliant,
        unchecked=summary.counts.unchecked,
        exempt=summary.counts.exempt,
        incomplete=summary.incomplete,
        published=len(summary.published),
    )
    return summary


class Run:
    """One invocation's work. Results are settled on the calling thread only; the pool just makes calls."""

    def __init__(
        self, services: Services, deadline: Deadline, summary: Summary, pool: ThreadPoolExecutor, target: Target
    ) -> None:
        self.services = services
        self.target = target
        self.settings = services.settings
        self.clock = services.clock
        self.pool = pool
        self.workspace = services.workspace  # the place's: estate.workspace_for sets it
        self.exemptions = Rules()
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
                self.fail(f"stopped checking: {exc}. Check {self._check(exc)}", "refused")
            else:
                self.summary.incomplete = True
        return True

    def _check(self, exc: ApiError) -> str:
        """What to check when `exc` was refused: the function's agency, or the member account's it reached."""
        target = self.target
        if target.account is None or not exc.call.startswith("workspace"):  # the function's own keys
            return "the agency's keys" if exc.status == 401 else needed_by(exc.call)
        account = f"account {target.account}'s agency {target.agency}"
        if exc.status == 401:
            return f"{account}: the temporary keys it gave were refused (expired, or the agency was changed)"
        action = ACTIONS.get(exc.call, "the actions")
        return (
            f"that {account} grants {action} in project {target.project_id} "
            "(docs/iam-member-account.json holds the policy to give it)"
        )

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
                from .change_report import ChangeView  # only with a history
                from .change_report import fingerprint as change_fingerprint

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
                services.client, settings.endpoint("ces"), settings.project_id, summary, keep=RETURN_MARGIN_SECONDS
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
