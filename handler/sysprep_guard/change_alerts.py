"""One run's use of its history (STATE_BUCKET): record the run, decide what to publish, then say it was done.

With NOTIFY=changes a sweep publishes what changed since the last complete sweep, nothing when nothing did, and
the full report on FULL_REPORT_DAY's sweep, on demand, or when there is nothing to compare with. An event's
findings are always new: it publishes them in full, and the next sweep counts them as announced. OBS out of
reach never fails a run: the run reports in full (nothing says what changed) and its summary says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .changes import Changes, compare, without
from .client import Credentials
from .errors import ApiError
from .logs import log
from .report import Summary, reason_head
from .settings import Settings
from .state import Entry, History, Kind, Record, done_key, encode, new_run_id, run_key, stamp
from .timing import Clock

WAIT_FOR_LATER_SECONDS = 5.0  # how long a run waits for a later-started overlapping run to say what it announced


@dataclass
class Decision:
    full: bool  # publish the full report
    changes: Changes | None  # publish these changes (None: none to publish, or nothing to compare with)
    why: str

    @property
    def mode(self) -> str:
        return "+".join(m for m, on in (("full", self.full), ("changes", self.changes is not None)) if on) or "nothing"


class RunMemory:
    def __init__(
        self,
        settings: Settings,
        credentials: Credentials,
        summary: Summary,
        *,
        started: datetime,
        sweep: bool,
        listed: Callable[[str], bool],
        full_report: bool,
        seconds: float,
        clock: Clock,
    ) -> None:
        from .obs_store import ObsStore  # the OBS SDK: only when state is configured

        assert settings.state_bucket is not None
        self.settings = settings
        self.summary = summary
        self.started = started
        self.listed = listed
        self.full_report = full_report
        self.clock = clock
        self.kind: Kind = "event" if not sweep else ("sweep" if not summary.incomplete else "partial")
        self.run_id = new_run_id()
        self.key = run_key(settings.state_prefix, summary.project_id, started, self.kind, self.run_id)
        self.entry = Entry(stamp(started), self.kind, self.run_id, self.key)
        self.view: list[str] = []
        self.saved = False
        try:
            store = ObsStore(settings.endpoint("obs"), settings.state_bucket, credentials, seconds=seconds)
        except ImportError as exc:  # a package built without the OBS SDK
            self.history = None
            summary.state = f"not saved: the OBS SDK is missing ({exc.name})"
            return
        self.history = History(store, settings.state_prefix, summary.project_id)  # the target's

    def decide(self) -> Decision:
        """Record the run, then decide what it publishes."""
        if self.history is None:
            return Decision(True, None, "the run history is unavailable")
        now = self.clock.wall()
        try:
            self.history.store.put(self.key, encode(self._record()))
            self.saved = True
            runs = self.history.list(now)
        except ApiError as exc:
            return self._unavailable(exc)
        self.view = [e.run_id for e in runs if e.run_id != self.run_id]
        self.summary.state = "saved"
        if self.settings.notify == "all":
            return Decision(True, None, "NOTIFY=all")
        try:
            covered = self._covered_by_later(runs, now)
        except ApiError as exc:  # listing again, while waiting for a later run
            return self._unavailable(exc)
        if self.kind == "event":
            if covered is None:  # a complete sweep that started later announced every desktop, these too
                return Decision(False, None, "a later sweep announced these desktops")
            return Decision(True, None, "an event's findings are always new")
        baseline = self.history.baseline(runs, self.entry, now)
        if baseline.unreadable:
            return Decision(True, None, "the last complete sweep's run object could not be read")
        if baseline.since is None:
            return Decision(True, None, "no complete sweep to compare with yet")
        if baseline.policy != self.summary.policy.model_dump():  # the changes would be the policy's, not the fleet's
            return Decision(True, None, "the policy changed since the last complete sweep")
        findings = {f.desktop_id: f.reasons for f in self.summary.non_compliant}
        unchecked = {u.desktop_id: reason_head(u.reason) for u in self.summary.unchecked}
        exempt = self.summary.exempt_ids
        changes = compare(baseline, findings, unchecked, self.listed, complete=self.kind == "sweep", exempt=exempt)
        changes = without(changes, covered)
        why = "what changed since the last complete sweep" if changes.any else "nothing changed since the last sweep"
        if self.full_report:  # weekly, or asked for: the full report besides the changes
            why += "; and the full report (FULL_REPORT_DAY, or asked for)"
        return Decision(self.full_report, changes if changes.any else None, why)

    def _covered_by_later(self, runs: list[Entry], now: datetime) -> set[str] | None:
        """Desktops later-started runs announced without this one (None: all of them)."""
        history, until = self.history, self.clock.now() + WAIT_FOR_LATER_SECONDS
        assert history is not None
        covered, deferred = history.covered_by_later(
            self.entry, runs, lambda: history.list(now), lambda: self._pause_until(until)
        )
        if deferred:
            log.info("changes left to later runs that announced them", runs=deferred)
        return covered

    def finish(self, delivered: bool, notified: str) -> None:
        """Say the run is done: its `done` object, holding the runs it saw (best effort: a failure is reported)."""
        if self.history is None or not self.saved:
            return
        from .state import Done

        done = Done(run_id=self.run_id, view=self.view, notified=notified)
        try:
            self.history.store.put(done_key(self.key, delivered), done.model_dump_json().encode())
        except ApiError as exc:
            log.warning("the run's done mark could not be saved", error=str(exc))
            self.summary.state = f"saved, but not its done mark: {exc}"

    def _record(self) -> Record:
        summary = self.summary
        return Record(
            run_id=self.run_id,
            started=self.started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            trigger=summary.trigger,
            kind=self.kind,
            project_id=summary.project_id,
            region=summary.region,
            policy=summary.policy.model_dump(),
            counts={
                "desktops": summary.total,
                "checked": summary.checked,
                "compliant": summary.compliant,
                "non_compliant": summary.counts.non_compliant,
                "unchecked": summary.counts.unchecked,
                "unlisted": summary.unlisted,
            },
            unchecked_by_reason=summary.counts.unchecked_by_reason,
            findings={f.desktop_id: f.reasons for f in summary.non_compliant},
            unchecked={u.desktop_id: reason_head(u.reason) for u in summary.unchecked},
            compliant=summary.compliant_ids if self.kind == "event" else [],
            exempt={e.desktop_id: e.why for e in summary.exempt},
        )

    def _pause_until(self, until: float) -> bool:
        left = until - self.clock.now()
        if left <= 0:
            return False
        self.clock.sleep(min(0.5, left))
        return True

    def _unavailable(self, exc: ApiError) -> Decision:
        what = "saved, but could not be read" if self.saved else "not saved"
        self.summary.state = f"{what}: {exc}"
        log.error("the run history is out of reach; this run reports in full", error=str(exc))
        return Decision(True, None, f"the history in OBS is out of reach ({exc.short})")
