"""What changed since the last complete sweep: pure functions over the findings, no I/O.

The baseline is what was last announced: the findings of the last complete sweep, updated by the runs after it
(a creation or rebuild event's findings, and the desktops it found compliant; an incomplete sweep's findings).
A sweep then reports desktops newly non-compliant or with other reasons, desktops fixed (checked, and compliant
now) or gone (a complete sweep no longer lists them), and desktops left unchecked twice in a row; the rest is one
count. An incomplete sweep never calls a desktop it did not reach fixed or gone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from typing import Any

from pydantic import BaseModel


class Baseline(BaseModel):
    since: str | None = None  # when the last complete sweep started; None: there is none
    policy: dict[str, Any] | None = None  # the policy that sweep judged by
    unreadable: bool = False  # there is one, but its object could not be read
    findings: dict[str, list[str]] = {}
    unchecked: dict[str, str] = {}  # the previous sweep's unchecked desktops (id -> reason head)


class Resolved(BaseModel):
    desktop_id: str
    how: str  # "fixed", "gone", or "exempt" (exempt now)
    was: list[str]  # the reasons it had


class Changes(BaseModel):
    since: str | None
    new: list[str] = []  # newly non-compliant
    changed: dict[str, list[str]] = {}  # non-compliant for other reasons than before: id -> the reasons before
    resolved: list[Resolved] = []
    persisting: list[str] = []  # unchecked in this sweep and in the one before
    still: int = 0  # non-compliant as before
    newly_unchecked: int = 0  # unchecked now, not before: counted, not listed (a passing throttle, say)

    @property
    def any(self) -> bool:
        return bool(self.new or self.changed or self.resolved or self.persisting)

    def counts(self) -> dict[str, int]:
        return {
            "new": len(self.new),
            "changed": len(self.changed),
            "fixed": sum(r.how == "fixed" for r in self.resolved),
            "gone": sum(r.how == "gone" for r in self.resolved),
            "exempt": sum(r.how == "exempt" for r in self.resolved),
            "still_non_compliant": self.still,
            "still_unchecked": len(self.persisting),
            "newly_unchecked": self.newly_unchecked,
        }


def compare(
    baseline: Baseline,
    findings: Mapping[str, list[str]],
    unchecked: Mapping[str, str],
    listed: Callable[[str], bool],
    complete: bool,
    exempt: Set[str] = frozenset(),
) -> Changes:
    """A sweep's findings and unchecked desktops against the baseline. `listed(id)`: did the sweep list it;
    `exempt`: the desktops exempt now (an exemption is no fix)."""
    changes = Changes(since=baseline.since)
    for desktop_id in sorted(findings):
        before = baseline.findings.get(desktop_id)
        if before is None:
            changes.new.append(desktop_id)
        elif sorted(before) != sorted(findings[desktop_id]):
            changes.changed[desktop_id] = before
        else:
            changes.still += 1
    for desktop_id in sorted(set(baseline.findings) - set(findings)):
        if desktop_id in unchecked:
            continue  # not judged this time: nothing is known of it
        if desktop_id in exempt:
            changes.resolved.append(Resolved(desktop_id=desktop_id, how="exempt", was=baseline.findings[desktop_id]))
        elif listed(desktop_id):
            changes.resolved.append(Resolved(desktop_id=desktop_id, how="fixed", was=baseline.findings[desktop_id]))
        elif complete:  # a complete sweep lists every desktop there is: this one is no more
            changes.resolved.append(Resolved(desktop_id=desktop_id, how="gone", was=baseline.findings[desktop_id]))
    for desktop_id in sorted(unchecked):
        if desktop_id in baseline.unchecked:
            changes.persisting.append(desktop_id)
        else:
            changes.newly_unchecked += 1
    return changes


def without(changes: Changes, covered: Set[str] | None) -> Changes:
    """The changes minus those about desktops a later run covers (None: every desktop), which it announces."""
    if covered is None:
        return Changes(since=changes.since)

    def keep(desktop_id: str) -> bool:
        return desktop_id not in covered

    return changes.model_copy(
        update={
            "new": [d for d in changes.new if keep(d)],
            "changed": {d: r for d, r in changes.changed.items() if keep(d)},
            "resolved": [r for r in changes.resolved if keep(r.desktop_id)],
            "persisting": [d for d in changes.persisting if keep(d)],
        }
    )
