"""Fan-out: a sweep of several targets invokes this same function asynchronously once per target.

FunctionGraph is the engine that spreads the work: each target's invocation is an ordinary sweep of one project
(with its own report, history and retries), so one target's failure cannot touch another. The dispatching
invocation only starts them: it returns the targets it dispatched, and publishes nothing unless some could not be
started, which it says in one message.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .errors import ApiError
from .estate import EstateSummary, TargetResult, one_after_another
from .events import Invocation, Sweep
from .functiongraph import FunctionGraph
from .logs import log
from .notification import (
    SCHEMA_VERSION,
    SMS_FORBIDDEN,
    SMS_MAX_CHARS,
    Entry,
    Part,
    attributes,
    render_view,
    with_tail,
)
from .targets import ESTATE, Target
from .text import clip, plural
from .timing import Deadline

if TYPE_CHECKING:
    from .orchestrator import Origin, Services


def fan_out(
    invocation: Invocation, services: Services, deadline: Deadline, targets: tuple[Target, ...], origin: Origin
) -> EstateSummary:
    from .orchestrator import PUBLISH_RESERVE_SECONDS, _publish, new_summary

    if origin.function_urn is None:  # the context gave no name: sweep here rather than not at all
        log.warning("the function's own name is unknown (no getFunctionName, no RUNTIME_FUNC_NAME): no fan-out")
        return one_after_another(invocation, services, deadline, targets)
    settings, work, urn = services.settings, invocation.work, origin.function_urn
    assert isinstance(work, Sweep)
    functiongraph = FunctionGraph(
        services.client, settings.endpoint("functiongraph"), settings.project_id, keep=PUBLISH_RESERVE_SECONDS
    )

    def start(target: Target) -> TargetResult:
        event = {
            "target_sweep": {
                "target": target.key,
                "trigger": invocation.trigger if invocation.trigger in ("timer", "manual") else "manual",
                "weekday": work.weekday,
                "full_report": work.full_report,
                "dispatched_by": origin.request_id,
            }
        }
        result = TargetResult(target=target.key, name=target.name, account=target.account)
        try:
            result.request_id = functiongraph.invoke_async(urn, event)
        except ApiError as exc:
            result.error = str(exc)
            log.error("a target's sweep could not be started", target=target.label, error=str(exc))
        return result

    with ThreadPoolExecutor(settings.max_concurrency, thread_name_prefix="dispatch") as pool:
        # Each call in this invocation's context: its log lines keep the request id, the client its keys.
        futures = [pool.submit(contextvars.copy_context().run, start, target) for target in targets]
        results = [f.result() for f in futures]
    summary = EstateSummary(trigger=invocation.trigger, mode="fan_out", targets=results)
    failed = [r for r in results if r.error]
    log.info("sweep fanned out", targets=len(targets), started=len(targets) - len(failed), failed=len(failed))
    if failed:
        # Publishing this failing fails the invocation: its retry starts every target again (copies of their
        # reports, never a target left unstarted in silence: docs/reliability.md).
        report = new_summary(invocation, services, settings.home)
        report.target = ESTATE
        # The same targets not started carry the same fingerprint, whatever the error texts (request ids) say.
        keys = "\n".join(sorted(r.target for r in failed))
        report.fingerprint = hashlib.sha256(f"dispatch\n{keys}".encode()).hexdigest()[:20]
        _publish(services, report, render_view(DispatchView(report, results, urn)))
        summary.published = report.published
    return summary


class Failed(BaseModel):
    target: str
    error: str


class DispatchView:
    """The one message a fan-out publishes: the targets whose sweeps could not be started, and why."""

    def __init__(self, summary: Any, results: Sequence[TargetResult], function_urn: str) -> None:
        self.summary = summary
        self.total = len(results)
        self.function_urn = function_urn
        self.entries: list[Entry] = [
            Failed(target=r.name or r.target, error=clip(r.error or "", 500)) for r in results if r.error
        ]

    def headline(self) -> str:
        return f"the sweep of {len(self.entries):,} of {plural(self.total, 'target')} could not be started"

    def subject(self, part: Part) -> str:
        return with_tail(f"Sysprep: {self.headline()}", self.summary, part)

    def sms(self) -> str:
        text = f"Sysprep {self.summary.where}: {self.headline()}"
        return clip(text.translate(SMS_FORBIDDEN), SMS_MAX_CHARS - 1) + "."

    def line(self, entry: Entry) -> str:
        return f"- {entry.target}: {entry.error}"  # type: ignore[attr-defined]

    def text(self, chunk: Sequence[Entry], part: Part) -> str:
        s = self.summary
        started = (
            f"A sweep of {plural(self.total, 'target')} started each as an asynchronous invocation of "
            f"{self.function_urn}; {self.headline()}, so those were not checked. The others report on their own."
        )
        lines = [
            self.subject(part),
            "",
            f"Region {s.region}, project {s.project_id}, {s.trigger} trigger, {s.run_time[:19].replace('T', ' ')} UTC.",
            started,
            "Check the function's permission functiongraph:function:invokeAsync on itself, and its URN.",
            "",
            f"Not started ({len(chunk):,}):",
            *(self.line(e) for e in chunk),
        ]
        return "\n".join(lines) + "\n"

    def document(self, chunk: Sequence[Entry], part: Part) -> dict[str, Any]:
        s = self.summary
        return {
            "schema_version": SCHEMA_VERSION,
            "report": "dispatch",
            "trigger": s.trigger,
            "region": s.region,
            "project_id": s.project_id,
            "run_time": s.run_time,
            "targets": self.total,
            "part": part._asdict(),
            "failed": [e.model_dump() for e in chunk],
        }

    def attributes(self, part: Part) -> list[dict[str, Any]]:
        return attributes(self.summary, part, report="dispatch", severity="incomplete", findings=[], unchecked=False)

    def trimmed(self) -> DispatchView:
        return self
