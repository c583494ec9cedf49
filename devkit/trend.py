"""The run history's trend: one row per day, the findings that have stood longest, and a chart (scripts/history).

Pure functions over the run records (sysprep_guard.state.Record), apart from `plot`, which writes a PNG. Days are
UTC days, as in the run objects' keys. A day's row is its last complete sweep: partial sweeps and events see only
part of the fleet, so their counts would make the line jump.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sysprep_guard.state import Record  # handler/ on sys.path, as the scripts and tests put it

TOP = 10  # longest-standing findings shown


def started(record: Record) -> datetime:
    return datetime.fromisoformat(record.started.replace("Z", "+00:00")).astimezone(timezone.utc)


def window(days_with_runs: Iterable[date], days: int) -> tuple[date, date] | None:
    """The `days` days ending with the newest run's (not today: a local history is of simulated nights), from the
    oldest run's day at the earliest; None when there is no run."""
    found = sorted(set(days_with_runs))
    if not found:
        return None
    last = found[-1]
    return max(found[0], last - timedelta(days=days - 1)), last


@dataclass(frozen=True)
class Day:
    day: date
    sweep: Record | None  # the day's last complete sweep
    others: tuple[str, ...] = ()  # the kinds of the day's other runs, when it has no complete sweep


def daily(records: Iterable[Record], first: date, last: date) -> list[Day]:
    """One row per day from `first` to `last`, days without any run included (a gap is worth seeing)."""
    by_day: dict[date, list[Record]] = {}
    for record in sorted(records, key=lambda r: (r.started, r.run_id)):
        by_day.setdefault(started(record).date(), []).append(record)
    rows = []
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        runs = by_day.get(day, [])
        sweeps = [r for r in runs if r.kind == "sweep"]
        kinds = tuple(sorted({r.kind for r in runs}))
        rows.append(Day(day, sweeps[-1]) if sweeps else Day(day, None, kinds))
    return rows


@dataclass(frozen=True)
class Standing:
    desktop_id: str
    reasons: list[str]  # as the latest sweep found them
    since: datetime  # the first of the complete sweeps in a row that found it non-compliant
    days: int  # calendar days (UTC) from then to the latest sweep
    sweeps: int  # how many sweeps in a row
    from_start: bool  # since the window's first sweep: it may have stood longer


def longest_standing(records: Iterable[Record]) -> list[Standing]:
    """The findings of the latest complete sweep, longest-standing first, counted back through the complete sweeps
    before it while each found the desktop non-compliant. A sweep that left it unchecked neither breaks nor extends
    the run (nothing was known of it); an incomplete sweep or an event is not counted at all."""
    sweeps = sorted((r for r in records if r.kind == "sweep"), key=lambda r: (r.started, r.run_id))
    if not sweeps:
        return []
    latest = sweeps[-1]
    found = []
    for desktop_id, reasons in latest.findings.items():
        first, count = latest, 0
        for sweep in reversed(sweeps):
            if desktop_id in sweep.findings:
                first, count = sweep, count + 1
            elif desktop_id not in sweep.unchecked:
                break
        since = started(first)
        days = (started(latest).date() - since.date()).days  # by the calendar: nightly runs start a little apart
        found.append(Standing(desktop_id, reasons, since, days, count, first is sweeps[0]))
    found.sort(key=lambda s: (s.since, s.desktop_id))
    return found


def reasons_seen(rows: Sequence[Day]) -> list[str]:
    """Every reason a desktop was left unchecked for, in the window: a column each."""
    return sorted({reason for row in rows if row.sweep for reason in row.sweep.unchecked_by_reason})


def trend_table(rows: Sequence[Day]) -> list[str]:
    """The rows as text: a column per count, and one per reason desktops were left unchecked."""
    reasons = reasons_seen(rows)
    columns = ["desktops", "checked", "non-compliant", *(f"unchecked: {r}" for r in reasons or ["any"])]
    lines = ["  ".join(["day (UTC) ", *columns])]
    for row in rows:
        if row.sweep is None:
            what = f"only {' and '.join(row.others)} runs, no complete sweep" if row.others else "no run"
            lines.append(f"{row.day.isoformat()}  {what}")
            continue
        counts, unchecked = row.sweep.counts, row.sweep.unchecked_by_reason
        cells = [counts.get("desktops"), counts.get("checked"), counts.get("non_compliant")]
        cells += [unchecked.get(r, 0) for r in reasons] if reasons else [counts.get("unchecked")]
        text = [("?" if c is None else f"{c:,}").rjust(len(h)) for c, h in zip(cells, columns, strict=True)]
        lines.append("  ".join([row.day.isoformat(), *text]))
    return lines


def standing_table(standing: Sequence[Standing]) -> list[str]:
    lines = [f"{'desktop':<36}  {'since (UTC)':<17}  {'days':>4}  {'sweeps':>6}  reasons"]
    for s in standing:
        since = s.since.strftime("%Y-%m-%d %H:%M") + ("+" if s.from_start else "")
        lines.append(f"{s.desktop_id:<36}  {since:<17}  {s.days:>4}  {s.sweeps:>6}  {', '.join(s.reasons)}")
    if any(s.from_start for s in standing):
        lines.append("+ non-compliant since the first complete sweep shown: it may have been before that too.")
    return lines


def plot(rows: Sequence[Day], path: Path, title: str) -> None:
    """Non-compliant and unchecked desktops per day, a PNG at `path`. matplotlib is imported here only: the rest of
    the history needs none of it."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    points = [(row.day, row.sweep) for row in rows if row.sweep is not None]
    days = [datetime(d.year, d.month, d.day) for d, _ in points]
    non_compliant = [s.counts.get("non_compliant") or 0 for _, s in points]
    unchecked = [s.counts.get("unchecked") or 0 for _, s in points]

    figure, axes = plt.subplots(figsize=(9, 4.5), dpi=110)
    axes.plot(days, non_compliant, marker="o", color="#c0392b", label="non-compliant")
    axes.plot(days, unchecked, marker="s", color="#7f8c8d", label="unchecked")
    axes.set_title(title)
    axes.set_xlabel("day (UTC): the last complete sweep of each day")
    axes.set_ylabel("desktops")
    axes.set_ylim(0, max([*non_compliant, *unchecked, 1]) * 1.2)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, -(-len(rows) // 10))))  # whole days, 10 at most
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
