"""The report: what an invocation found, as the summary the handler returns and notifications render.

Memory and size stay bounded whatever the fleet: every finding is kept (each is published), but of the desktops
left unchecked (a whole fleet, when a permission is missing) only the MAX_LISTED smallest ids are kept, with
totals by reason. The summary the handler returns lists at most MAX_LISTED of each (FunctionGraph caps a
synchronous answer at 6 MB), with the totals in `counts`.
"""

# No `from __future__ import annotations`: this module's models are made at every cold start, and with it pydantic
# would evaluate each field's annotation from its text.

import hashlib
from datetime import date
from typing import Any

from pydantic import BaseModel, PrivateAttr

from .exemptions import Exempt, ending_soon
from .policy import Policy, format_version
from .text import clip

NOT_READY = "not_ready"  # Workspace was still creating or changing it (a task in progress): neither compliant nor not
NOT_FOUND = "not_found"  # named by an event, but Workspace lists no such desktop (deleted, or never made)
DEADLINE = "deadline"  # the invocation ran out of time before this desktop was checked
MAX_LISTED = 1000  # unchecked desktops kept (and notified) by id; entries of each list the summary returns
MAX_REASON_ROWS = 20  # rows of the by-reason table; the rest are folded into "other"
MAX_REASON_CHARS = 300  # a reason comes from an answer: bounded so that any one desktop fits a message
OTHER = "other"


class Finding(BaseModel):
    desktop_id: str
    reasons: list[str]
    sysprep_version: str | None = None
    computer_name: str | None = None
    user_name: str | None = None


class Unchecked(BaseModel):
    desktop_id: str
    reason: str


class PolicyView(BaseModel):
    """The policy applied, as readers see it: why a desktop failed."""

    description: str
    min_sysprep_version: str | None
    require_hibernate: bool
    require_update_route: bool

    @classmethod
    def of(cls, policy: Policy) -> "PolicyView":
        return cls(
            description=policy.describe(),
            min_sysprep_version=format_version(policy.min_version) if policy.min_version else None,
            require_hibernate=policy.require_hibernate,
            require_update_route=policy.require_update_route,
        )


class Counts(BaseModel):
    non_compliant: int = 0
    unchecked: int = 0
    unchecked_by_reason: dict[str, int] = {}  # by the head of the reason: its code or kind
    exempt: int = 0


def reason_head(reason: str) -> str:
    return reason.split(":", 1)[0]


class Summary(BaseModel):
    trigger: str
    region: str  # where the desktops are: the target's
    project_id: str
    account: str | None = None  # the member account the target is in; None: the function's own
    target: str | None = None  # the target's name (TARGETS), or None
    run_time: str  # when the invocation started, UTC, ISO 8601
    policy: PolicyView
    dry_run: bool
    skipped: str | None = None
    checked: int = 0
    compliant: int = 0
    non_compliant: list[Finding] = []  # every finding, by id once finished
    unchecked: list[Unchecked] = []  # the MAX_LISTED smallest ids once finished; counts.unchecked has them all
    exempt: list[Exempt] = []  # EXEMPT_TAG, EXEMPT_DESKTOP_IDS: the MAX_LISTED smallest ids; counts.exempt has them all
    counts: Counts = Counts()
    errors: list[str] = []  # work that failed as a whole (a listing, a job), beside per-desktop reasons
    error_kinds: list[str] = []  # what kinds of work failed: listing, job, refused, ...
    incomplete: bool = False
    unlisted: int | None = 0  # desktops a sweep never got to list (None: unknown, the listing failed at once)
    published: list[str] = []
    fingerprint: str | None = None  # the same findings give the same fingerprint, across platform retries
    notified: str | None = None  # with a history: "full", "changes" or "nothing" (and why); None: no history
    changes: dict[str, int] | None = None  # with NOTIFY=changes: how many new, changed, fixed, gone, ... desktops
    state: str = "off"  # the run history in OBS: "off", "saved", or what went wrong
    metrics: str = "off"  # Cloud Eye: "off", "sent", or what went wrong
    # An event's desktops judged compliant (a rebuild may fix one): recorded in its run object.
    _compliant_ids: list[str] | None = PrivateAttr(default=None)
    # Of every unchecked desktop, not only those kept: an order-free sum of their lines' digests.
    _unchecked_digest: int = PrivateAttr(default=0)
    _exempt_ids: set[str] = PrivateAttr(default_factory=set)  # all of them (few): an exemption is no fix

    def add_unchecked(self, desktop_id: str, reason: str) -> None:
        reason = clip(reason, MAX_REASON_CHARS)  # from an ApiError (scrubbed already) or one of ours
        counts = self.counts
        counts.unchecked += 1
        head = reason_head(reason)
        if head not in counts.unchecked_by_reason and len(counts.unchecked_by_reason) >= MAX_REASON_ROWS:
            head = OTHER  # reasons come from answers: their number is bounded too
        counts.unchecked_by_reason[head] = counts.unchecked_by_reason.get(head, 0) + 1
        line = f"{desktop_id} unchecked {head}".encode()
        value = int.from_bytes(hashlib.sha256(line).digest(), "big")
        self._unchecked_digest = (self._unchecked_digest + value) % 2**256
        self.unchecked.append(Unchecked(desktop_id=desktop_id, reason=reason))
        if len(self.unchecked) >= 2 * MAX_LISTED:  # amortised: memory stays flat however many there are
            self._keep_smallest()

    def add_exempt(self, exempt: Exempt) -> None:
        self.counts.exempt += 1
        self._exempt_ids.add(exempt.desktop_id)
        self.exempt.append(exempt)
        if len(self.exempt) >= 2 * MAX_LISTED:
            self._keep_smallest()

    @property
    def exempt_ids(self) -> frozenset[str]:
        return frozenset(self._exempt_ids)

    def ending_soon(self) -> list[Exempt]:
        """The exemptions (of those listed) that end within a week of this run: people should know."""
        today = date.fromisoformat(self.run_time[:10])
        return [e for e in self.exempt if ending_soon(e, today)]

    @property
    def where(self) -> str:
        """Which desktops, for people: the target's name, account, region and project."""
        place = f"{self.region}, project {self.project_id}"
        if self.account:
            place = f"account {self.account}, {place}"
        return f"{self.target}: {place}" if self.target else place

    def add_checked(self, checked: int, compliant_ids: list[str]) -> None:
        """A batch judged: `checked` desktops, of which these were compliant (findings go to add_finding)."""
        self.checked += checked
        self.compliant += len(compliant_ids)
        if self._compliant_ids is not None:
            self._compliant_ids.extend(compliant_ids)

    def keep_compliant_ids(self) -> None:
        """Remember which desktops were compliant, not only how many (an event's few; never a sweep's fleet)."""
        self._compliant_ids = []

    @property
    def compliant_ids(self) -> list[str]:
        return list(self._compliant_ids or [])

    def add_finding(self, finding: Finding) -> None:
        self.non_compliant.append(finding)
        self.counts.non_compliant += 1

    def fail(self, error: str, kind: str, limit: int, max_errors: int) -> None:
        """Record work that failed as a whole: the run is incomplete."""
        if len(self.errors) < max_errors:  # each is in every part of the notification: keep them few
            self.errors.append(clip(error, limit))
        if kind not in self.error_kinds:
            self.error_kinds = sorted([*self.error_kinds, kind])
        self.incomplete = True

    def finish(self) -> None:
        """Put the lists in id order (calls finish in any order; reports should not)."""
        self.non_compliant.sort(key=lambda f: f.desktop_id)
        self._keep_smallest()

    def _keep_smallest(self) -> None:
        self.unchecked.sort(key=lambda u: u.desktop_id)
        del self.unchecked[MAX_LISTED:]
        self.exempt.sort(key=lambda e: e.desktop_id)
        del self.exempt[MAX_LISTED:]

    def returned(self) -> dict[str, Any]:
        """What the handler returns: at most MAX_LISTED entries of each list, the totals in counts."""
        data = self.model_dump(mode="json")
        data["non_compliant"] = data["non_compliant"][:MAX_LISTED]
        return data

    @property
    def needs_notice(self) -> bool:
        return bool(self.non_compliant or self.counts.unchecked or self.errors or self.incomplete)

    @property
    def total(self) -> int:
        """Desktops this invocation found: checked, unchecked, and exempt."""
        return self.checked + self.counts.unchecked + self.counts.exempt

    def by_reason(self) -> dict[str, int]:
        """Counts per reason, unchecked ones by the head of their reason, most frequent first, at most
        MAX_REASON_ROWS rows (the rest folded into "other")."""
        counts: dict[str, int] = {}
        for finding in self.non_compliant:
            for reason in finding.reasons:
                counts[reason] = counts.get(reason, 0) + 1
        for head, n in self.counts.unchecked_by_reason.items():
            counts["unchecked: " + head] = n
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if len(ordered) > MAX_REASON_ROWS:
            rest = sum(n for _, n in ordered[MAX_REASON_ROWS - 1 :])
            ordered = [*ordered[: MAX_REASON_ROWS - 1], (OTHER, rest)]
        return dict(ordered)


def fingerprint(summary: Summary) -> str:
    """A digest of what was found and how completely (not of when, nor of error texts), so receivers can drop
    repeats: the same findings from a complete run and from an incomplete one differ."""
    digest = hashlib.sha256(f"{summary.project_id}\n{summary.region}\n".encode())
    for line in sorted(f"{f.desktop_id} {','.join(f.reasons)}" for f in summary.non_compliant):
        digest.update(line.encode() + b"\n")
    digest.update(f"unchecked {summary.counts.unchecked} {summary._unchecked_digest:064x}\n".encode())
    digest.update(f"incomplete {summary.incomplete} unlisted {summary.unlisted}\n".encode())
    digest.update(("errors " + ",".join(summary.error_kinds)).encode())
    return digest.hexdigest()[:20]
