"""The change alert (NOTIFY=changes): what changed since the last complete sweep, in every protocol.

Like the full report it is one message or numbered parts; what the parts share out is the desktops that changed
(newly non-compliant, non-compliant for other reasons, fixed, gone) and those still unchecked; the rest is counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from .changes import Changes, Resolved
from .notification import (
    SCHEMA_VERSION,
    SMS_FORBIDDEN,
    SMS_MAX_CHARS,
    WHOLE,
    Entry,
    Part,
    attributes,
    desktop_line,
    ending_lines,
    place_line,
    trimmed,
    unchecked_line,
    where,
    with_tail,
)
from .report import Finding, Summary, Unchecked
from .text import clip, plural


class ChangedFinding(Finding):
    """A desktop non-compliant before and now, for other reasons."""

    before: list[str]


def fingerprint(summary: Summary, changes: Changes) -> str:
    """A digest of the changes announced, so that receivers can drop a copy of the alert."""
    digest = hashlib.sha256(f"{summary.project_id}\n{summary.region}\nchanges since {changes.since}\n".encode())
    reasons = {f.desktop_id: ",".join(f.reasons) for f in summary.non_compliant}
    lines = [f"new {d} {reasons.get(d, '')}" for d in changes.new]
    lines += [f"changed {d} {reasons.get(d, '')}" for d in changes.changed]
    lines += [f"{r.how} {r.desktop_id}" for r in changes.resolved] + [f"unchecked {d}" for d in changes.persisting]
    for line in sorted(lines):
        digest.update(line.encode() + b"\n")
    digest.update(f"incomplete {summary.incomplete}".encode())
    return digest.hexdigest()[:20]


class ChangeView:
    def __init__(self, summary: Summary, changes: Changes) -> None:
        self.summary = summary
        self.changes = changes
        by_id = {f.desktop_id: f for f in summary.non_compliant}
        reasons_before = changes.changed
        self.new = [by_id[d] for d in changes.new if d in by_id]
        self.changed = [
            ChangedFinding(**by_id[d].model_dump(), before=reasons_before[d]) for d in reasons_before if d in by_id
        ]
        persisting = set(changes.persisting)
        self.persisting = [u for u in summary.unchecked if u.desktop_id in persisting]
        self.entries: list[Entry] = [*self.new, *self.changed, *changes.resolved, *self.persisting]

    def headline(self) -> str:
        n = self.changes.counts()
        parts = [
            f"{plural(n['new'], 'desktop')} newly non-compliant" if n["new"] else "",
            f"{n['changed']:,} non-compliant for other reasons" if n["changed"] else "",
            f"{n['fixed']:,} fixed" if n["fixed"] else "",
            f"{n['gone']:,} gone" if n["gone"] else "",
            f"{n['exempt']:,} exempt now" if n["exempt"] else "",
            f"{n['still_unchecked']:,} still unchecked" if n["still_unchecked"] else "",
        ]
        return ", ".join(p for p in parts if p) or "no change"

    def subject(self, part: Part) -> str:
        text = f"Sysprep changes: {self.headline()}" + (", incomplete" if self.summary.incomplete else "")
        return with_tail(text, self.summary, part)

    def sms(self) -> str:
        text = f"Sysprep {self.summary.where} changes: {self.headline()}; {self.changes.still:,} still non-compliant"
        return clip(text.translate(SMS_FORBIDDEN), SMS_MAX_CHARS - 1) + "."

    def line(self, entry: Entry) -> str:
        if isinstance(entry, ChangedFinding):
            return desktop_line(entry) + f" (before: {', '.join(entry.before)})"
        if isinstance(entry, Finding):
            return desktop_line(entry)
        if isinstance(entry, Resolved):
            return f"- {entry.desktop_id}: {entry.how} (was: {', '.join(entry.was)})"
        assert isinstance(entry, Unchecked)
        return unchecked_line(entry)

    def text(self, chunk: Sequence[Entry], part: Part) -> str:
        summary, c = self.summary, self.changes
        since = (c.since or "")[:19].replace("T", " ")  # to the second, for people
        lines = [
            self.subject(WHOLE),
            "",
            place_line(summary),
            f"Policy: {summary.policy.description}.",
            f"Since the sweep of {since} UTC: {self.headline()}.",
            (
                f"{plural(c.still, 'desktop is', 'desktops are')} still non-compliant, as before; "
                f"{summary.counts.non_compliant:,} in all of {plural(summary.total, 'desktop')}."
            ),
        ]
        lines += ending_lines(summary)
        if c.newly_unchecked:
            lines.append(f"{plural(c.newly_unchecked, 'desktop')} could not be checked this time only (not listed).")
        if summary.incomplete:
            lines.append("The run is INCOMPLETE: desktops it did not reach are neither fixed nor gone.")
        lines.extend(f"Error: {error}" for error in summary.errors)
        sections = (
            ("Newly non-compliant", [e for e in chunk if type(e) is Finding]),
            ("Non-compliant for other reasons", [e for e in chunk if isinstance(e, ChangedFinding)]),
            ("Fixed", [e for e in chunk if isinstance(e, Resolved) and e.how == "fixed"]),
            ("Gone (no longer listed)", [e for e in chunk if isinstance(e, Resolved) and e.how == "gone"]),
            ("Exempt now (not checked)", [e for e in chunk if isinstance(e, Resolved) and e.how == "exempt"]),
            ("Still unchecked, as in the sweep before", [e for e in chunk if isinstance(e, Unchecked)]),
        )
        for title, entries in sections:
            if entries:
                lines += ["", f"{title} ({len(entries):,}):", *(self.line(e) for e in entries)]
        lines.append("")
        if part.of > 1:
            lines.append(f"Part {part.number} of {part.of}: together the parts list every change once.")
        lines.append(f"Fingerprint {summary.fingerprint}: a repeat of these changes carries the same one.")
        return "\n".join(lines) + "\n"

    def document(self, chunk: Sequence[Entry], part: Part) -> dict[str, Any]:
        summary, c = self.summary, self.changes
        return {
            "schema_version": SCHEMA_VERSION,
            "report": "changes",
            "trigger": summary.trigger,
            **where(summary),
            "run_time": summary.run_time,
            "policy": summary.policy.model_dump(),
            "since": c.since,
            "counts": {**c.counts(), "non_compliant": summary.counts.non_compliant, "desktops": summary.total},
            "incomplete": summary.incomplete,
            "errors": summary.errors,
            "part": part._asdict(),
            "findings": [e.model_dump() for e in chunk if isinstance(e, Finding)],
            "resolved": [e.model_dump() for e in chunk if isinstance(e, Resolved)],
            "unchecked": [e.model_dump() for e in chunk if isinstance(e, Unchecked)],
            "fingerprint": summary.fingerprint,
        }

    def attributes(self, part: Part) -> list[dict[str, Any]]:
        findings = [*self.new, *self.changed]
        severity = "non_compliant" if findings else ("unchecked" if self.persisting else "resolved")
        return attributes(
            self.summary,
            part,
            report="changes",
            severity=severity,
            findings=findings,
            unchecked=bool(self.persisting),
        )

    def trimmed(self) -> ChangeView:
        return ChangeView(trimmed(self.summary), self.changes)
