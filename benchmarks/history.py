#!/usr/bin/env python3
"""Benchmark: what the run history (STATE_BUCKET) costs a 100,000-desktop sweep with 12,000 findings.

    python benchmarks/history.py                                  # markdown on stdout (about 3 minutes)
    python benchmarks/history.py --append benchmarks/RESULTS.md   # make bench: replaces this section there
    python benchmarks/history.py --desktops 20000 --repeat 1      # a quick check that it all works

Each sweep runs in a fresh child process (benchmarks/_child.py) against the local emulator, with the same latency
on every call, OBS's included. Three sweeps of the same fleet, taking turns, three desktops changed before each:
- without state: the full report, as before the history existed;
- with state on the weekly full report's night: the same sweep and the same full report, plus the history's calls
  (PutObject of the run, ListObjects, GetObject of the baseline, PutObject of the done mark) and the change alert
  beside the report: the difference is what the history costs;
- with state on any other night (NOTIFY=changes, the default with a history): the change alert alone.
It reports the median wall time of each, the child's peak RSS, and the size of the run object, as stored and as it
would be with random desktop ids (the emulator's seeded ids share their first 24 characters, which compress away).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent / "handler")]

from sweep import MIN_VERSION, RSS_LIMIT_MB, child, machine, megabytes, progress, prose, seconds, table  # noqa: E402

from devkit.emulator import FAKE_AK, FAKE_SK, FAKE_TOKEN, Emulator, Fleet, Sysprep  # noqa: E402

BUCKET = "sysprep-state"
TITLE = "## Run history: what STATE_BUCKET costs"
OVERHEAD_LIMIT = 0.15  # the state read and write add at most this to the wall time of the same sweep
OBJECT_LIMIT = 1024 * 1024  # bytes of one run object
FAILING_KINDS = 7  # Fleet.seeded's kinds that fail "version >= 3.0.10, hibernation and route update supported"
# events/timer.json fires on a Saturday: FULL_REPORT_DAY=saturday makes its sweep the weekly full report's.
SAME_SWEEP = "with state, the full report's night"
MODES = {
    "without state": {},
    SAME_SWEEP: {"STATE_BUCKET": BUCKET, "FULL_REPORT_DAY": "saturday"},
    "with state, any other night": {"STATE_BUCKET": BUCKET},
}


@dataclass
class Measured:
    walls: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    published: int = 0
    findings: int = 0

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)


def user_data(emu: Emulator, extra: dict[str, str]) -> dict[str, str]:
    policy = {"MIN_SYSPREP_VERSION": MIN_VERSION, "REQUIRE_HIBERNATE": "true", "REQUIRE_UPDATE_ROUTE": "true"}
    return emu.settings(**{**policy, "FULL_REPORT_DAY": "never", **extra})


def sweep(emu: Emulator, extra: dict[str, str]) -> dict[str, Any]:
    emu.clear_records()
    objects = len(emu.buckets[BUCKET])
    spec = {"keys": [FAKE_AK, FAKE_SK, FAKE_TOKEN], "user_data": user_data(emu, extra)}
    result = child("sweep", spec)
    if emu.rejected_signatures or emu.errors or result["incomplete"] or result["errors"]:
        raise RuntimeError(f"a sweep went wrong: {emu.errors[:3]} {result['errors'][:3]}")
    if extra and len(emu.buckets[BUCKET]) != objects + 2:  # the run object and its done mark
        raise RuntimeError("the sweep did not save its run object and done mark")
    result["calls"] = dict(emu.counts)
    result["published_messages"] = len(emu.published)
    return result


def nightly_change(fleet: Fleet, night: int) -> None:
    """Three desktops change between nights: one falls short, one is fixed, one fails another way."""
    ids = fleet.ids()
    fleet.update(ids[3 * night], sysprep=Sysprep(version="3.0.1"))
    fleet.update(ids[3 * night + 1], sysprep=Sysprep())
    fleet.update(ids[3 * night + 2], sysprep=Sysprep(hibernate=False))


def run(desktops: int, findings: int, latency: float, repeat: int) -> tuple[dict[str, Measured], tuple[int, int]]:
    per_kind = findings / FAILING_KINDS / desktops
    fleet = Fleet.seeded(desktops, seed=1, per_kind=per_kind)
    measured = {mode: Measured() for mode in MODES}
    with Emulator(fleet=fleet, latency=latency, buckets=[BUCKET]) as emu:
        progress(f"{desktops:,} desktops: a first sweep with state, the baseline")
        sweep(emu, MODES[SAME_SWEEP])
        for night in range(repeat):
            for mode, extra in MODES.items():  # taking turns, so that the machine's drift falls on each alike
                nightly_change(emu.fleet, night)
                progress(f"  round {night + 1}/{repeat}: {mode}")
                result = sweep(emu, extra)
                m = measured[mode]
                m.walls.append(result["wall"])
                m.rss.append(result["rss_peak"])
                m.calls, m.published = result["calls"], result["published_messages"]
                m.findings = result["non_compliant"]
        objects = emu.buckets[BUCKET]
        largest = max((o.data for key, o in objects.items() if key.endswith(".json.gz")), key=len)
    return measured, (len(largest), len(with_random_ids(largest)))


def with_random_ids(data: bytes) -> bytes:
    """The run object again, each desktop id replaced by a random UUID, as real ids are."""
    from sysprep_guard.state import decode, encode

    record = decode(data)
    rng = random.Random(0)
    fresh = {d: str(uuid.UUID(int=rng.getrandbits(128), version=4)) for d in (*record.findings, *record.unchecked)}
    return encode(
        record.model_copy(
            update={
                "findings": {fresh[d]: r for d, r in record.findings.items()},
                "unchecked": {fresh[d]: r for d, r in record.unchecked.items()},
            }
        )
    )


def render(command: str, desktops: int, latency: float, measured: dict[str, Measured], sizes: tuple[int, int]) -> str:
    base = measured["without state"]
    same = measured[SAME_SWEEP]
    overhead = same.wall / base.wall - 1
    peak = max(max(m.rss) for m in measured.values())
    size = (
        f"{sizes[1] / 1024:,.0f} KB for {base.findings:,} findings with random ids ({sizes[1] / base.findings:.0f} "
        f"bytes each); {sizes[0] / 1024:,.0f} KB as stored with the emulator's ids"
    )
    goals = [
        [f"the state read and write add ≤ {OVERHEAD_LIMIT:.0%} to the sweep's wall time", overhead <= OVERHEAD_LIMIT,
         f"{seconds(same.wall)} / {seconds(base.wall)} = {overhead:+.1%}"],
        [f"peak RSS ≤ {RSS_LIMIT_MB} MB", peak <= RSS_LIMIT_MB, megabytes(peak)],
        ["each run object ≤ 1 MB", max(sizes) <= OBJECT_LIMIT, size],
    ]  # fmt: skip
    obs_kinds = ("obs_put", "obs_list", "obs_get")
    rows = [
        [
            mode,
            seconds(m.wall),
            f"{m.wall / base.wall:.2f}",
            f"{m.published:,}",
            ", ".join(f"{k.removeprefix('obs_')} {m.calls.get(k, 0)}" for k in obs_kinds) if MODES[mode] else "–",
            megabytes(max(m.rss)),
        ]
        for mode, m in measured.items()
    ]
    return (
        "\n\n".join(
            [
                TITLE,
                prose(f"""
                `{command}`: a sweep of {desktops:,} desktops with {base.findings:,} findings, {latency * 1000:.0f} ms
                of latency on every call (OBS's too), {len(base.walls)} round(s) of the three sweeps taking turns
                (median wall time, highest peak RSS), after a first sweep with state that gives the baseline. Three
                desktops change before every sweep. On the weekly full report's night a sweep with state publishes
                the same full report as without (and a change alert), so the difference between the first two rows
                is what the history costs: its OBS calls, and the OBS SDK's import in a cold process. On other nights
                it publishes the change alert alone.
            """),
                "\n".join(f"- {k}: {v}" for k, v in machine().items()),
                table(["goal", "met", "evidence"], [[g, "yes" if ok else "**NO**", e] for g, ok, e in goals], 3),
                table(["sweep", "wall time", "vs. without state", "messages", "OBS calls", "peak RSS"], rows),
            ]
        )
        + "\n"
    )


def append(path: Path, section: str) -> None:
    """Put the section at the end of the file, in place of the one a previous run left there."""
    text = path.read_text() if path.exists() else ""
    if TITLE in text:
        text = text[: text.index(TITLE)]
    path.write_text(text.rstrip("\n") + "\n\n" + section if text.strip() else section)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--desktops", type=int, default=100_000)
    parser.add_argument("--findings", type=int, default=12_000)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the emulator adds to every call")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the three sweeps (default 3)")
    parser.add_argument("--append", type=Path, help="also put the section at the end of this file (RESULTS.md)")
    args = parser.parse_args(argv)
    if args.desktops < 1 or not 0 < args.findings <= args.desktops or args.repeat < 1 or args.latency < 0:
        parser.error("--desktops, --findings (at most the desktops) and --repeat must be positive")
    command = " ".join(["python benchmarks/history.py", *(sys.argv[1:] if argv is None else argv)])
    started = time.perf_counter()
    measured, sizes = run(args.desktops, args.findings, args.latency, args.repeat)
    section = render(command, args.desktops, args.latency, measured, sizes)
    print(section)
    if args.append:
        append(args.append, section)
        progress(f"written to {args.append} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
