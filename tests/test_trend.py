"""The run history's trend (devkit/trend.py): a row per day, the longest-standing findings, and the chart."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from devkit import trend
from sysprep_guard.state import Record

A, B, C = "desk-a", "desk-b", "desk-c"
BELOW = ["sysprep_version_below_minimum"]
HIBERNATE = ["hibernate_not_supported"]
_run_ids = itertools.count(1)


def run(
    started: str,
    findings: dict[str, list[str]] | None = None,
    unchecked: dict[str, str] | None = None,
    kind: str = "sweep",
    desktops: int = 50,
) -> Record:
    findings, unchecked = findings or {}, unchecked or {}
    counts = {
        "desktops": desktops,
        "checked": desktops - len(unchecked),
        "compliant": desktops - len(unchecked) - len(findings),
        "non_compliant": len(findings),
        "unchecked": len(unchecked),
        "unlisted": 0,
    }
    return Record(
        run_id=f"{next(_run_ids):012x}",
        started=started,
        trigger="timer" if kind != "event" else "cts",
        kind=kind,  # type: ignore[arg-type]
        project_id="0123456789abcdef0123456789abcdef",
        region="ap-southeast-1",
        policy={},
        counts=counts,
        unchecked_by_reason=dict(Counter(unchecked.values())),
        findings=findings,
        unchecked=unchecked,
    )


def test_the_window_ends_with_the_newest_run_and_starts_no_earlier_than_the_oldest() -> None:
    days = [date(2026, 11, 1), date(2026, 11, 20), date(2026, 11, 29)]
    assert trend.window(days, 30) == (date(2026, 11, 1), date(2026, 11, 29))
    assert trend.window(days, 7) == (date(2026, 11, 23), date(2026, 11, 29))
    assert trend.window(days, 1) == (date(2026, 11, 29), date(2026, 11, 29))
    assert trend.window([], 30) is None


def test_each_day_shows_its_last_complete_sweep_and_says_when_it_has_none() -> None:
    records = [
        run("2026-11-27T18:00:00.000Z", {A: BELOW}),
        run("2026-11-27T22:00:00.000Z", {A: BELOW, B: HIBERNATE}, {C: "not_ready"}),  # the day's last sweep
        run("2026-11-28T18:00:00.000Z", {A: BELOW}, kind="partial"),
        run("2026-11-28T19:00:00.000Z", {B: HIBERNATE}, kind="event"),
        run("2026-11-30T18:00:00.000Z", {A: BELOW}, {C: "APIG.0308", B: "not_ready"}, desktops=49),
    ]
    rows = trend.daily(records, date(2026, 11, 27), date(2026, 11, 30))

    assert [(row.day.day, row.sweep and row.sweep.started) for row in rows] == [
        (27, "2026-11-27T22:00:00.000Z"),
        (28, None),
        (29, None),
        (30, "2026-11-30T18:00:00.000Z"),
    ]
    assert trend.trend_table(rows) == [
        "day (UTC)   desktops  checked  non-compliant  unchecked: APIG.0308  unchecked: not_ready",
        "2026-11-27        50       49              2                     0                     1",
        "2026-11-28  only event and partial runs, no complete sweep",
        "2026-11-29  no run",
        "2026-11-30        49       47              1                     1                     1",
    ]


def test_a_history_without_unchecked_desktops_still_has_an_unchecked_column() -> None:
    rows = trend.daily([run("2026-11-27T18:00:00.000Z", {A: BELOW})], date(2026, 11, 27), date(2026, 11, 27))
    assert trend.trend_table(rows)[1:] == ["2026-11-27        50       50              1               0"]
    assert trend.trend_table(rows)[0].endswith("unchecked: any")


def test_longest_standing_counts_back_the_sweeps_in_a_row_that_found_each_desktop() -> None:
    records = [
        run("2026-11-25T18:00:00.500Z", {A: BELOW, B: BELOW}),
        run("2026-11-26T18:00:00.200Z", {A: BELOW}),  # B fixed
        run("2026-11-27T18:00:00.100Z", {A: BELOW, B: HIBERNATE, C: BELOW}),  # B again, C new
        run("2026-11-27T19:00:00.000Z", {C: BELOW}, kind="partial"),  # not a complete sweep: not counted
        run("2026-11-28T18:00:00.000Z", {A: BELOW, B: HIBERNATE}, {C: "not_ready"}),  # C unchecked: not known
        run("2026-11-29T17:59:59.900Z", {A: BELOW, B: HIBERNATE, C: BELOW}),  # a little under 4 days after the first
    ]
    standing = trend.longest_standing(records)

    assert [(s.desktop_id, s.since.day, s.days, s.sweeps, s.from_start, s.reasons) for s in standing] == [
        (A, 25, 4, 5, True, BELOW),  # days by the calendar: the sweeps start a little apart
        (B, 27, 2, 3, False, HIBERNATE),
        (C, 27, 2, 2, False, BELOW),  # the sweep that left it unchecked neither breaks the run nor counts
    ]
    assert standing[0].since == datetime(2026, 11, 25, 18, 0, 0, 500000, tzinfo=timezone.utc)
    table = trend.standing_table(standing)
    assert table[1] == f"{A:<36}  2026-11-25 18:00+     4       5  sysprep_version_below_minimum"
    assert table[-1].startswith("+ non-compliant since the first complete sweep shown")


def test_no_complete_sweep_means_no_standing_findings() -> None:
    assert trend.longest_standing([run("2026-11-25T18:00:00.000Z", {A: BELOW}, kind="event")]) == []


def test_the_chart_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="--plot's matplotlib: requirements-dev.txt")
    records = [run(f"2026-11-{day}T18:00:00.000Z", {A: BELOW} if day % 2 else {}) for day in range(20, 30)]
    rows = trend.daily(records, date(2026, 11, 20), date(2026, 11, 29))
    chart = tmp_path / "trend.png"

    trend.plot(rows, chart, "Sysprep compliance")

    data = chart.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
