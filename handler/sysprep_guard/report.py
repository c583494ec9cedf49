"""The report: the invocation's summary, and the notification rendered from it (split to SMN's limits)."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

from .smn import MESSAGE_MAX_BYTES, SUBJECT_MAX_BYTES

NOT_READY = "not_ready"  # still being provisioned when the wait ended: neither compliant nor not
DEADLINE = "deadline"  # the invocation ran out of time before this desktop was checked


class Finding(BaseModel):
    desktop_id: str
    reasons: list[str]
    sysprep_version: str | None = None
    computer_name: str | None = None
    user_name: str | None = None


class Unchecked(BaseModel):
    desktop_id: str
    reason: str


class Summary(BaseModel):
    trigger: str
    region: str
    project_id: str
    policy: str
    dry_run: bool
    skipped: str | None = None
    checked: int = 0
    compliant: int = 0
    non_compliant: list[Finding] = []
    unchecked: list[Unchecked] = []
    errors: list[str] = []  # work that failed as a whole (a listing, a job), beside per-desktop reasons
    incomplete: bool = False
    unlisted: int | None = 0  # desktops a sweep never got to list (None: unknown, the listing failed at once)
    published: list[str] = []
    fingerprint: str | None = None  # the same findings give the same fingerprint, across platform retries

    @property
    def needs_notice(self) -> bool:
        return bool(self.non_compliant or self.unchecked or self.errors)


def fingerprint(summary: Summary) -> str:
    """A digest of what was found (not of when, nor of error texts), so receivers can drop repeats."""
    digest = hashlib.sha256(f"{summary.project_id}\n{summary.region}\n".encode())
    for line in sorted(
        [f"{f.desktop_id} {','.join(f.reasons)}" for f in summary.non_compliant]
        + [f"{u.desktop_id} unchecked" for u in summary.unchecked]
    ):
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()[:20]


class Message(BaseModel):
    subject: str
    message: str


def cut_utf8(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, never cutting through a character."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def subject_of(summary: Summary, part: str = "") -> str:
    total = summary.checked + len(summary.unchecked)
    text = f"Sysprep: {len(summary.non_compliant):,} of {total:,} desktops non-compliant"
    if summary.unchecked:
        text += f", {len(summary.unchecked):,} unchecked"
    if summary.incomplete:
        text += ", incomplete"
    return cut_utf8(f"{text} ({summary.region}){part}", SUBJECT_MAX_BYTES)


def _header(summary: Summary) -> list[str]:
    lines = [
        f"Sysprep compliance report for project {summary.project_id} in {summary.region} ({summary.trigger} trigger).",
        f"Policy: {summary.policy}.",
        (
            f"Checked {summary.checked:,} desktops: {summary.compliant:,} compliant, "
            f"{len(summary.non_compliant):,} non-compliant; {len(summary.unchecked):,} could not be checked."
        ),
    ]
    if summary.incomplete:
        lines.append("The run is INCOMPLETE: some desktops were not reached.")
    lines.extend(f"Error: {error}" for error in summary.errors)
    if summary.fingerprint:
        lines.append(f"Fingerprint: {summary.fingerprint} (a repeat of these findings carries the same one).")
    return lines


def _finding_line(finding: Finding) -> str:
    who = ", ".join(
        part
        for part in (
            finding.computer_name,
            f"user {finding.user_name}" if finding.user_name else None,
        )
        if part
    )
    version = f" version {finding.sysprep_version}" if finding.sysprep_version else ""
    return f"- {finding.desktop_id}{f' ({who})' if who else ''}{version}: {', '.join(finding.reasons)}"


def render(summary: Summary, limit: int = MESSAGE_MAX_BYTES) -> list[Message]:
    """The notification: one message, or numbered parts that together list every desktop once."""
    header = _header(summary)
    sections = [
        ("Non-compliant desktops:", [_finding_line(f) for f in summary.non_compliant]),
        (
            "Desktops that could not be checked:",
            [f"- {u.desktop_id}: {u.reason}" for u in summary.unchecked],
        ),
    ]
    # Room for the part line and the section titles that each part repeats.
    budget = limit - len("\n".join(header).encode()) - 200
    parts: list[list[str]] = [[]]
    used = 0
    for title, lines in sections:
        if not lines:
            continue
        titled = False
        for line in lines:
            size = len(line.encode()) + 1
            if parts[-1] and used + size > budget:
                parts.append([])
                used, titled = 0, False
            if not titled:
                parts[-1].extend(["", title])
                used += len(title.encode()) + 2
                titled = True
            parts[-1].append(cut_utf8(line, budget))
            used += size
    count = len(parts)
    messages = []
    for number, body in enumerate(parts, start=1):
        tag = f" (part {number}/{count})" if count > 1 else ""
        head = header + ([f"Part {number} of {count}."] if count > 1 else [])
        messages.append(Message(subject=subject_of(summary, tag), message="\n".join(head + body) + "\n"))
    return messages
