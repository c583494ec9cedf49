"""Notifications rendered from the report: one message per protocol, filterable attributes, split to SMN's limits.

Each SMN message carries a `message_structure`: `default` and `email` a readable report, `sms` one short line,
and `http`, `https`, `functionstage` and `functiongraph` a JSON document (docs/notification.schema.json). When all of it
would pass 256 KB, the desktops are split into numbered parts; every part repeats the totals.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Protocol

from pydantic import BaseModel

from .exemptions import Exempt
from .report import MAX_LISTED, Finding, Summary, Unchecked
from .text import clip, cut_utf8, plural

SCHEMA_VERSION = "1.2"  # 1.1: `report`, and the change alert (change_report.py); 1.2: target, account, exempt
SUBJECT_MAX_BYTES = 512
MESSAGE_MAX_BYTES = 256 * 1024  # of the whole message_structure
JSON_PROTOCOLS = ("http", "https", "functionstage", "functiongraph")
SMS_MAX_CHARS = 490
_TITLES = 1024  # room in a part for its section titles, which entries' own costs leave out
SMS_FORBIDDEN = str.maketrans({"[": "(", "]": ")", "【": "(", "】": ")"})  # SMN refuses these in an SMS
Entry = BaseModel  # what a report lists: a Finding, an Unchecked or Exempt desktop, a change


class Part(NamedTuple):
    number: int = 1
    of: int = 1


class Notification(BaseModel):
    """One SMN publish: its subject, its message_structure, and its message_attributes."""

    subject: str
    message_structure: str
    attributes: list[dict[str, Any]]

    @property
    def protocols(self) -> dict[str, str]:
        return json.loads(self.message_structure)


WHOLE = Part()


def subject(summary: Summary, part: Part = WHOLE) -> str:
    text = f"Sysprep: {summary.counts.non_compliant:,} of {plural(summary.total, 'desktop')} non-compliant"
    if summary.counts.unchecked:
        text += f", {summary.counts.unchecked:,} unchecked"
    if summary.incomplete:
        text += ", incomplete"
    return with_tail(text, summary, part)


def with_tail(text: str, summary: Summary, part: Part) -> str:
    """A subject: `text`, then where (account, region, project) and which part, cut to SMN's 512 bytes."""
    tail = f" ({summary.where})" + (f" part {part.number}/{part.of}" if part.of > 1 else "")
    room = SUBJECT_MAX_BYTES - len(tail.encode())
    # The tail says where and which part: it survives, whatever the head has to lose.
    return cut_utf8(text, room) + tail if room > 0 else cut_utf8(text + tail, SUBJECT_MAX_BYTES)


def sms(summary: Summary) -> str:
    text = f"Sysprep {summary.where}: {summary.counts.non_compliant:,}/{plural(summary.total, 'desktop')} non-compliant"
    if summary.counts.unchecked:
        text += f", {summary.counts.unchecked:,} unchecked"
    if summary.incomplete:
        text += ", run incomplete"
    return clip(text.translate(SMS_FORBIDDEN), SMS_MAX_CHARS - 1) + "."


def desktop_line(finding: Finding) -> str:
    who = ", ".join(p for p in (finding.computer_name, f"user {finding.user_name}" if finding.user_name else None) if p)
    version = f" version {finding.sysprep_version}" if finding.sysprep_version else ""
    return f"- {finding.desktop_id}{f' ({who})' if who else ''}{version}: {', '.join(finding.reasons)}"


def unchecked_line(unchecked: Unchecked) -> str:
    return f"- {unchecked.desktop_id}: {unchecked.reason}"


def exempt_line(exempt: Exempt) -> str:
    name = f" ({exempt.computer_name})" if exempt.computer_name else ""
    until = f", until {exempt.until}" if exempt.until and exempt.until not in exempt.why else ""
    return f"- {exempt.desktop_id}{name}: {exempt.why}{until}"


def place_line(summary: Summary) -> str:
    """Where and when, first in every readable report."""
    account = f"account {summary.account}, " if summary.account else ""
    where = f"{account}project {summary.project_id}, region {summary.region}"
    where = f"Target {summary.target}: {where}" if summary.target else where[0].upper() + where[1:]
    when = summary.run_time.replace("T", " ").removesuffix("Z")
    return f"{where}, {summary.trigger} trigger, {when} UTC."


def ending_lines(summary: Summary) -> list[str]:
    """The exemptions that end within a week: after that, those desktops are judged again."""
    soon = summary.ending_soon()
    if not soon:
        return []
    listed = ", ".join(f"{e.desktop_id} ({e.until})" for e in soon[:20])
    more = f" and {len(soon) - 20:,} more" if len(soon) > 20 else ""
    return [f"{plural(len(soon), 'exemption ends', 'exemptions end')} within 7 days: {listed}{more}."]


def text_report(
    summary: Summary,
    findings: list[Finding],
    unchecked: list[Unchecked],
    part: Part = WHOLE,
    counts: dict[str, int] | None = None,
    exempt: Sequence[Exempt] = (),
) -> str:
    """The readable report, for an inbox (and SMN's default)."""
    lines = [
        subject(summary),
        "",
        place_line(summary),
        f"Policy: {summary.policy.description}.",
        (
            f"Checked {plural(summary.checked, 'desktop')}: {summary.compliant:,} compliant, "
            f"{summary.counts.non_compliant:,} non-compliant. {summary.counts.unchecked:,} could not be checked."
        ),
    ]
    if summary.counts.exempt:
        lines.append(f"{plural(summary.counts.exempt, 'desktop is', 'desktops are')} exempt, not checked.")
    lines += ending_lines(summary)
    if summary.incomplete:
        line = "The run is INCOMPLETE: not every desktop was reached."
        if summary.unlisted is None:
            line += " An unknown number of desktops were not listed."
        elif summary.unlisted:
            line += f" {plural(summary.unlisted, 'desktop was', 'desktops were')} never listed."
        lines.append(line)
    lines.extend(f"Error: {error}" for error in summary.errors)
    counts = summary.by_reason() if counts is None else counts
    if counts:
        width = len(f"{max(counts.values()):,}")
        lines += ["", "By reason:", *(f"  {n:>{width},}  {reason}" for reason, n in counts.items())]
    if findings:
        lines += ["", f"Non-compliant desktops{_range(part, findings, summary.non_compliant)}:"]
        lines += [desktop_line(f) for f in findings]
    if unchecked:
        lines += ["", f"Desktops that could not be checked{_range(part, unchecked, summary.unchecked)}:"]
        lines += [unchecked_line(u) for u in unchecked]
    if exempt:
        lines += ["", f"Exempt desktops{_range(part, list(exempt), summary.exempt)}:"]
        lines += [exempt_line(e) for e in exempt]
    not_listed = summary.counts.unchecked - len(summary.unchecked)
    if not_listed and part.number == part.of:
        lines.append(
            f"... and {not_listed:,} more that could not be checked, counted by reason above and listed in "
            "the invocation's summary."
        )
    lines.append("")
    if part.of > 1:
        lines.append(f"Part {part.number} of {part.of}: together the parts list every desktop once.")
    lines.append(f"Fingerprint {summary.fingerprint}: a repeat of these findings carries the same one.")
    return "\n".join(lines) + "\n"


def _range(part: Part, shown: list[Any], every: list[Any]) -> str:
    return f" ({len(every):,})" if part.of == 1 else f" ({len(shown):,} of {len(every):,} in this part)"


def where(summary: Summary) -> dict[str, Any]:
    """The JSON document's fields that say where the desktops are."""
    return {
        "target": summary.target,
        "account": summary.account,
        "region": summary.region,
        "project_id": summary.project_id,
    }


def document(
    summary: Summary,
    findings: list[Finding],
    unchecked: list[Unchecked],
    part: Part = WHOLE,
    counts: dict[str, int] | None = None,
    exempt: Sequence[Exempt] = (),
) -> dict[str, Any]:
    """The JSON document for programs; its schema is docs/notification.schema.json."""
    return {
        "schema_version": SCHEMA_VERSION,
        "report": "full",
        "trigger": summary.trigger,
        **where(summary),
        "run_time": summary.run_time,
        "policy": summary.policy.model_dump(),
        "counts": {
            "desktops": summary.total,
            "checked": summary.checked,
            "compliant": summary.compliant,
            "non_compliant": summary.counts.non_compliant,
            "unchecked": summary.counts.unchecked,
            "unchecked_listed": len(summary.unchecked),
            "unlisted": summary.unlisted,
            "exempt": summary.counts.exempt,
            "by_reason": summary.by_reason() if counts is None else counts,
        },
        "incomplete": summary.incomplete,
        "errors": summary.errors,
        "part": part._asdict(),
        "findings": [f.model_dump() for f in findings],
        "unchecked": [u.model_dump() for u in unchecked],
        "exempt": [e.model_dump() for e in exempt],
        "fingerprint": summary.fingerprint,
    }


def attributes(
    summary: Summary,
    part: Part = WHOLE,
    *,
    report: str = "full",
    severity: str | None = None,
    findings: Sequence[Finding] | None = None,
    unchecked: bool | None = None,
) -> list[dict[str, Any]]:
    """message_attributes for subscription filter policies. SMN takes values of 1 to 32 letters, digits and
    underscores, so the region's hyphens become underscores (ap_southeast_1). `fingerprint` and `part` let a
    subscriber drop a copy: a part published twice (see docs/reliability.md, Delivery) carries the same pair.
    `report` says whether it is the full report or the changes; a change alert passes the findings it lists."""
    findings = summary.non_compliant if findings is None else findings
    unchecked = bool(summary.counts.unchecked) if unchecked is None else unchecked
    severity = severity or ("non_compliant" if findings else ("unchecked" if unchecked else "incomplete"))
    reasons = sorted({r for f in findings for r in f.reasons})
    reasons += ["unchecked"] * unchecked + ["incomplete"] * summary.incomplete
    result = [
        {"name": "report", "type": "STRING", "value": report},
        {"name": "severity", "type": "STRING", "value": severity},
        {"name": "trigger", "type": "STRING", "value": summary.trigger},
        {"name": "region", "type": "STRING", "value": attribute_value(summary.region)},
        {"name": "target", "type": "STRING", "value": attribute_value(summary.target or summary.project_id)},
        {"name": "fingerprint", "type": "STRING", "value": summary.fingerprint or "none"},
        {"name": "part", "type": "STRING", "value": f"{part.number}_of_{part.of}"},
    ]
    if reasons:
        result.append({"name": "reasons", "type": "STRING_ARRAY", "value": reasons[:10]})
    return result


def attribute_value(text: str) -> str:
    """SMN's attribute values: 1 to 32 letters, digits and underscores."""
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in text)[:32] or "none"


class View(Protocol):
    """A kind of report (the full one here, changes in change_report.py): what each part of it holds."""

    summary: Summary
    entries: Sequence[Entry]  # what the parts share out, each listed once

    def subject(self, part: Part) -> str: ...
    def sms(self) -> str: ...
    def text(self, chunk: Sequence[Entry], part: Part) -> str: ...
    def document(self, chunk: Sequence[Entry], part: Part) -> dict[str, Any]: ...
    def line(self, entry: Entry) -> str: ...
    def attributes(self, part: Part) -> list[dict[str, Any]]: ...
    def trimmed(self) -> View: ...


class FullView:
    """Every finding and unchecked desktop: the report without history, and with it when a full one is due."""

    def __init__(self, summary: Summary) -> None:
        self.summary = summary
        self.entries: list[Entry] = [*summary.non_compliant, *summary.unchecked[:MAX_LISTED], *summary.exempt]
        self.counts = summary.by_reason()

    def subject(self, part: Part) -> str:
        return subject(self.summary, part)

    def sms(self) -> str:
        return sms(self.summary)

    def text(self, chunk: Sequence[Entry], part: Part) -> str:
        findings, unchecked, exempt = _split(chunk)
        return text_report(self.summary, findings, unchecked, part, self.counts, exempt)

    def document(self, chunk: Sequence[Entry], part: Part) -> dict[str, Any]:
        findings, unchecked, exempt = _split(chunk)
        return document(self.summary, findings, unchecked, part, self.counts, exempt)

    def line(self, entry: Entry) -> str:
        if isinstance(entry, Finding):
            return desktop_line(entry)
        return exempt_line(entry) if isinstance(entry, Exempt) else unchecked_line(entry)  # type: ignore[arg-type]

    def attributes(self, part: Part) -> list[dict[str, Any]]:
        return attributes(self.summary, part)

    def trimmed(self) -> FullView:
        return FullView(trimmed(self.summary))


def _split(chunk: Sequence[Entry]) -> tuple[list[Finding], list[Unchecked], list[Exempt]]:
    return (
        [e for e in chunk if isinstance(e, Finding)],
        [e for e in chunk if isinstance(e, Unchecked)],
        [e for e in chunk if isinstance(e, Exempt)],
    )


class _Renderer:
    """Renders parts of one view; what every part repeats is computed once."""

    def __init__(self, view: View) -> None:
        self.view = view
        self.sms = view.sms()

    def notification(self, chunk: Sequence[Entry], part: Part) -> Notification:
        packed = json.dumps(self.view.document(chunk, part), ensure_ascii=False, separators=(",", ":"))
        text = self.view.text(chunk, part)
        structure = {"default": text, "email": text, "sms": self.sms, **dict.fromkeys(JSON_PROTOCOLS, packed)}
        return Notification(
            subject=self.view.subject(part),
            message_structure=json.dumps(structure, ensure_ascii=False, separators=(",", ":")),
            attributes=self.view.attributes(part),
        )

    def size(self, chunk: Sequence[Entry]) -> int:
        return len(self.notification(chunk, _WIDEST).message_structure.encode())


_WIDEST = Part(number=999, of=999)  # sizes are taken with the widest part numbers


def render(summary: Summary, limit: int = MESSAGE_MAX_BYTES) -> Iterator[Notification]:
    """The full report: one message, or numbered parts whose desktops add up to all of them, once each."""
    return render_view(FullView(summary), limit)


def render_view(view: View, limit: int = MESSAGE_MAX_BYTES) -> Iterator[Notification]:
    """Parts are made one at a time, as they are published, so that only one is held in memory. It never raises:
    what cannot fit is cut, and says so."""
    renderer = _Renderer(view)
    if renderer.size([]) + _TITLES > limit:  # only errors and reasons can make the header this large
        renderer = _Renderer(view.trimmed())
    entries = list(view.entries)
    costs = [_cost(view, e) for e in entries]
    budget = max(1, limit - renderer.size([]) - _TITLES)
    if sum(costs) <= budget:
        whole = renderer.notification(entries, WHOLE)
        if len(whole.message_structure.encode()) <= limit:  # the estimate leaves room: this is a check
            yield whole
            return
    chunks = _pack(renderer, entries, costs, budget, limit)
    for number, chunk in enumerate(chunks, start=1):
        yield renderer.notification(chunk, Part(number=number, of=len(chunks)))


def trimmed(summary: Summary) -> Summary:
    """The summary with its errors cut to a few short ones, for a header that would not fit otherwise."""
    errors = [clip(e, 200) for e in summary.errors[:3]]
    errors.append(f"({len(summary.errors) - 3} more errors left out to fit; the invocation's summary has them)")
    return summary.model_copy(update={"errors": errors})


def _pack(renderer: _Renderer, entries: list[Entry], costs: list[int], budget: int, limit: int) -> list[list[Entry]]:
    """Fill parts in order, each as full as the estimated costs allow, then check every part for real, moving
    entries on to the next part should the estimate have let one grow too large; an entry too large for a part
    of its own is cut."""
    chunks: list[list[Entry]] = [[]]
    used = 0
    for entry, cost in zip(entries, costs, strict=True):
        if chunks[-1] and used + cost > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(entry)
        used += cost
    for index, chunk in enumerate(chunks):
        while len(chunk) > 1 and renderer.size(chunk) > limit:
            if index + 1 == len(chunks):
                chunks.append([])
            chunks[index + 1].insert(0, chunk.pop())
        if len(chunk) == 1 and renderer.size(chunk) > limit:
            chunk[0] = _cut(chunk[0])
    return chunks


def _cut(entry: Entry) -> Entry:
    """An entry cut to its id and short fields, marked as cut."""
    if isinstance(entry, Finding):
        return entry.model_copy(
            update={
                "reasons": [clip(r, 60) for r in entry.reasons[:6]],
                "sysprep_version": clip(entry.sysprep_version or "", 40) or None,
                "computer_name": "(cut to fit)",
                "user_name": None,
            }
        )
    if isinstance(entry, Unchecked):
        return entry.model_copy(update={"reason": clip(entry.reason, 60) + " (cut to fit)"})
    if isinstance(entry, Exempt):
        return entry.model_copy(update={"why": clip(entry.why, 60) + " (cut to fit)", "computer_name": None})
    return entry


def _cost(view: View, entry: Entry) -> int:
    """Bytes an entry adds to a message_structure: twice as a text line, once per JSON protocol as a JSON item,
    each escaped once more inside the structure."""
    item = json.dumps(entry.model_dump(), ensure_ascii=False, separators=(",", ":"))
    text_cost = len(json.dumps(view.line(entry) + "\n", ensure_ascii=False).encode()) - 2
    json_cost = len(json.dumps(item + ",", ensure_ascii=False).encode()) - 2
    return 2 * text_cost + len(JSON_PROTOCOLS) * json_cost
