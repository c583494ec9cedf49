#!/usr/bin/env python3
"""Benchmark: timer sweeps of 1,000 / 10,000 / 100,000 desktops against the local emulator with injected latency.

    python benchmarks/sweep.py                       # the full run (a few minutes), markdown on stdout
    python benchmarks/sweep.py --out benchmarks/RESULTS.md
    python benchmarks/sweep.py --quick               # small fleets, one repeat: checks that it all works
    python benchmarks/sweep.py --only cold-import,ratio   # the two ratio goals alone (about a minute)
    python benchmarks/sweep.py --throttled 0         # no throttled answers: that section is not measured

Needs the official SDKs beside the function's dependencies: `pip install -r benchmarks/requirements.txt`.

What it measures, each in a fresh child process (benchmarks/_child.py) while the emulator runs here:
- the function (index.handler on events/timer.json) with MAX_CONCURRENCY=8 and =1 (the same calls one after
  another): calls by kind as the emulator counted them, wall time of the handler call, the ratio of the two,
  the most calls the emulator saw in flight, and the child's peak RSS;
- the same on each larger fleet holding only as many findings as the smallest one, so that the peak RSS can
  be compared at equal findings and at equal fleet;
- two baselines with the official huaweicloudsdkworkspace client: CheckSysprepInfo in sequential batches of
  100 (every size), and ShowSysprepInfo once per desktop (the smallest fleet only, extrapolated linearly);
- a sweep whose first CheckSysprepInfo answers are throttled (429 APIG.0308), sampling the calls in flight;
- cold import: `import index` plus the settings, beside the official Workspace + SMN clients, in fresh
  processes taking turns, with `python -c pass` as the floor. Ours is measured as deployed: the zip that
  scripts/package builds (for this interpreter's Python), unpacked and run with `-S`, so the standard library and
  the zip alone, as FunctionGraph runs it; and, beside it, from handler/ in this venv (whose site-packages hold
  more than the zip). The official clients are measured in this venv, as their users run them.

Traffic goes only to the emulator on 127.0.0.1. Every loop is bounded and every child has a timeout.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

try:
    from devkit.emulator import FAKE_AK, FAKE_SK, FAKE_TOKEN, MESSAGE_MAX_BYTES, Emulator, Fault, Fleet
except ImportError as exc:  # run with an interpreter that lacks the function's dependencies
    raise SystemExit(f"sweep: {exc.name} is missing: pip install -r benchmarks/requirements.txt") from None

CHILD = Path(__file__).resolve().parent / "_child.py"
CHILD_TIMEOUT = 900.0  # seconds; no measurement here comes near it
PER_KIND = 0.02  # Fleet.seeded's default: 2% of the fleet of each non-compliant kind, and of desktops being created
MIN_VERSION = "3.0.10"
LIST_PAGE, SYSPREP_BATCH = 1000, 100
RSS_LIMIT_MB = 128  # FunctionGraph's smallest memory size
SAMPLE_EVERY = 0.001  # seconds between samples of the calls in flight (throttle scenario)
SECTIONS = ("cold-import", "sweeps", "ratio", "throttle")  # what --only chooses from; all by default
SPEED_GOAL = 0.35  # a 10,000-desktop sweep's wall time over the same calls made one after another, at most
IMPORT_GOAL = 0.45  # the deployed cold import's CPU time over the official SDK clients', at most (medians)


# Running measurements -------------------------------------------------------------------------------


@dataclass
class Run:
    """One measurement: what the child reported, and what the emulator saw meanwhile."""

    mode: str
    fleet: int
    child: dict[str, Any]
    counts: Counter[str]
    statuses: Counter[int]
    peak_in_flight: int
    published_bytes: list[int] = field(default_factory=list)  # each publish's message(_structure), in bytes

    @property
    def wall(self) -> float:
        return float(self.child["wall"])

    @property
    def calls(self) -> int:
        return sum(self.counts.values())


def child(mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (this one's, so the same venv) and return its result."""
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        result = Path(tmp) / "result.json"
        command = [sys.executable, str(CHILD), mode, json.dumps({**spec, "result": str(result)})]
        done = subprocess.run(
            command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=CHILD_TIMEOUT
        )
        if done.returncode != 0 or not result.exists():
            raise RuntimeError(f"{mode} child failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return json.loads(result.read_text())


def base_spec(emu: Emulator) -> dict[str, Any]:
    return {
        "url": emu.url,
        "project_id": emu.project_id,
        "keys": [FAKE_AK, FAKE_SK, FAKE_TOKEN],
        "min_version": MIN_VERSION,
    }


def user_data(emu: Emulator, concurrency: int) -> dict[str, str]:
    return emu.settings(MIN_SYSPREP_VERSION=MIN_VERSION, MAX_CONCURRENCY=str(concurrency))


def measure(emu: Emulator, mode: str, concurrency: int = 8) -> Run:
    """One child run against `emu`, its records cleared first; refuses a run the emulator saw go wrong."""
    emu.clear_records()
    spec = base_spec(emu)
    if mode == "sweep":
        spec["user_data"] = user_data(emu, concurrency)
    result = child(mode, spec)
    statuses = Counter(status for _, status in emu.calls)
    run = Run(mode, len(emu.fleet), result, emu.counts, statuses, emu.max_concurrency)
    check_run(emu, run)
    for published in emu.published:  # what SMN's 256 KB limit applies to
        text = published.body.get("message_structure") or published.body.get("message") or ""
        run.published_bytes.append(len(text.encode()))
    return run


def check_run(emu: Emulator, run: Run) -> None:
    """The numbers mean something only if every request passed the signature check and was answered as
    planned: 200, or 404 for ShowSysprepInfo of a desktop without Sysprep info."""
    if emu.rejected_signatures:
        raise RuntimeError(f"{run.mode}: the emulator rejected {emu.rejected_signatures} signature(s)")
    if emu.errors:
        raise RuntimeError(f"{run.mode}: emulator errors {emu.errors[:3]}")
    unexpected = {s: n for s, n in run.statuses.items() if s != 200 and not (s == 404 and run.mode == "sdk-show")}
    if unexpected:
        raise RuntimeError(f"{run.mode}: unexpected answers {unexpected}")
    if run.mode == "sweep" and (run.child["incomplete"] or run.child["errors"]):
        raise RuntimeError(f"sweep incomplete: {run.child['errors']}")


def repeat(emu: Emulator, times: int, mode: str, concurrency: int = 8) -> Run:
    """`times` runs; the one with the median wall time, carrying the highest peak RSS of them all."""
    runs = sorted((measure(emu, mode, concurrency) for _ in range(times)), key=lambda r: r.wall)
    chosen = runs[len(runs) // 2]
    chosen.child["rss_peak"] = max(r.child["rss_peak"] for r in runs)
    return chosen


@contextmanager
def emulator(n: int, latency: float, per_kind: float = PER_KIND) -> Iterator[Emulator]:
    with Emulator(fleet=Fleet.seeded(n, seed=1, per_kind=per_kind), latency=latency) as emu:
        yield emu


# The scenarios --------------------------------------------------------------------------------------


@dataclass
class SizeResult:
    n: int
    findings: int
    ours: Run
    sequential: Run
    sdk_check: Run
    sdk_show: Run | None  # measured on the smallest fleet only
    few: Run | None = None  # a fleet of this size with the findings of the smallest fleet (not for the smallest)


def findings_of(fleet: Fleet) -> int:
    """Desktops a sweep reports under MIN_SYSPREP_VERSION alone: all but the compliant and capability kinds."""
    counts = fleet.kind_counts()
    return len(fleet) - counts["compliant"] - counts["no_hibernate"] - counts["no_update_route"]


def bench_size(n: int, latency: float, repeats: int, concurrency: int, smallest: int) -> SizeResult:
    """Ours (bounded and sequential) and the official client's baselines on a fleet of n at 2% of each kind;
    for a fleet larger than the smallest, ours again on one with the smallest fleet's number of findings."""
    with emulator(n, latency) as emu:
        findings = findings_of(emu.fleet)
        ours = repeat(emu, repeats, "sweep", concurrency)
        sequential = repeat(emu, repeats, "sweep", 1)
        sdk_check = measure(emu, "sdk-check")
        sdk_show = measure(emu, "sdk-show") if n == smallest else None
    result = SizeResult(n, findings, ours, sequential, sdk_check, sdk_show)
    if n > smallest:
        with emulator(n, latency, per_kind=max(1, round(smallest * PER_KIND)) / n) as emu:
            result.few = repeat(emu, repeats, "sweep", concurrency)
    return result


@dataclass
class RatioResult:
    """The speed ratio alone (--only ratio): ours at MAX_CONCURRENCY and at 1 on one fleet, no baselines."""

    n: int
    ours: Run
    sequential: Run


def bench_ratio(n: int, latency: float, repeats: int, concurrency: int) -> RatioResult:
    with emulator(n, latency) as emu:
        return RatioResult(n, repeat(emu, repeats, "sweep", concurrency), repeat(emu, repeats, "sweep", 1))


@dataclass
class ThrottleResult:
    n: int
    throttled: int
    run: Run
    before: int  # most calls in flight before the first throttled answer
    buckets: list[int]  # most calls in flight in each 20 ms after it


def bench_throttle(n: int, latency: float, concurrency: int, throttled: int) -> ThrottleResult:
    """A sweep meeting throttled answers, with the calls in flight sampled every millisecond meanwhile."""
    with emulator(n, latency) as emu:
        samples: list[tuple[float, int, int]] = []  # (time, calls in flight, calls answered)
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(SAMPLE_EVERY) and len(samples) < 2_000_000:
                samples.append((time.perf_counter(), emu.active, len(emu.calls)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            run = _throttled_sweep(emu, concurrency, throttled)
        finally:
            stop.set()
            sampler.join(timeout=5)
    first = next((i for i, (_, status) in enumerate(run.child["calls"]) if status == 429), None)
    if first is None:
        raise RuntimeError("the throttled sweep met no throttled answer: the fault was armed after its last call")
    at = next(t for t, _, answered in samples if answered > first)
    before = max((active for t, active, _ in samples if t < at), default=0)
    buckets = [
        max((a for t, a, _ in samples if at + 0.02 * k <= t < at + 0.02 * (k + 1)), default=0) for k in range(15)
    ]
    return ThrottleResult(n, throttled, run, before, buckets)


def _throttled_sweep(emu: Emulator, concurrency: int, throttled: int) -> Run:
    """A sweep whose sysprep calls, once a quarter of them (at most 20) were answered, meet `throttled` answers
    429 APIG.0308: the sweep is at full speed by then. `throttled` is at least 1 (run_all skips the scenario
    otherwise)."""
    if throttled < 1:
        raise ValueError("a throttled sweep needs at least one throttled answer")
    spec = {**base_spec(emu), "user_data": user_data(emu, concurrency)}
    after = min(20, math.ceil(len(emu.fleet) / SYSPREP_BATCH) // 4)
    emu.clear_records()
    armed = threading.Event()

    def arm() -> None:
        for _ in range(60_000):  # a minute at most
            if emu.counts["sysprep"] >= after:
                emu.inject("sysprep", Fault.throttled(), times=throttled)
                armed.set()
                return
            time.sleep(0.001)

    arming = threading.Thread(target=arm, daemon=True)
    arming.start()
    result = child("sweep", spec)
    arming.join(timeout=5)
    if not armed.is_set():
        raise RuntimeError(f"the throttle was never armed: the sweep made fewer than {after} sysprep calls")
    statuses = Counter(status for _, status in emu.calls)
    result["calls"] = list(emu.calls)
    result["after"] = after
    return Run("sweep", len(emu.fleet), result, emu.counts, statuses, emu.max_concurrency)


# Cold import ----------------------------------------------------------------------------------------

_SETTINGS = {
    "REGION": "ap-southeast-1",
    "PROJECT_ID": "0123456789abcdef0123456789abcdef",
    "SMN_TOPIC_URN": "urn:smn:ap-southeast-1:0123456789abcdef0123456789abcdef:sysprep-alerts",
    "MIN_SYSPREP_VERSION": MIN_VERSION,
}
# Each program times its own imports and prints "seconds peak_rss_mb" (VmHWM: see _child.peak_rss_mb).
_TIMED = """\
import sys, time
t, cpu = time.perf_counter(), time.process_time()
{body}
t, cpu = time.perf_counter() - t, time.process_time() - cpu
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
sys.stdout.write(f"{{t}} {{peak / 1024}} {{cpu}}")
"""


def ours(code: str) -> str:
    """The function's cold import with `code` (a directory holding index.py) first on sys.path."""
    return _TIMED.format(
        body=f"""\
sys.path.insert(0, {code!r})
import index
from sysprep_guard.settings import load_settings
load_settings({_SETTINGS!r}.get)"""
    )


OFFICIAL = _TIMED.format(
    body="""\
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkworkspace.v2 import (WorkspaceClient, ListDesktopsRequest, CheckSysprepInfoRequest,
    CheckSysprepInfoRequestBody, ShowSysprepInfoRequest)
from huaweicloudsdksmn.v2 import SmnClient, PublishMessageRequest, PublishMessageRequestBody"""
)


DEPLOYED, IN_VENV, OFFICIAL_SDK = "ours, the deployed zip", "ours, handler/ in the venv", "official SDK"


def deployed_zip(tmp: Path) -> Path:
    """scripts/package's zip for this interpreter's Python, unpacked into `tmp`: what FunctionGraph runs (built for
    its runtime's Python there; the same requirements and the same files)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    out = tmp / "sysprep-guard.zip"
    built = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "package"), "--python-version", version, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if built.returncode != 0:
        raise RuntimeError(f"scripts/package could not build the zip for Python {version}:\n{built.stderr[-3000:]}")
    code = tmp / "code"
    with zipfile.ZipFile(out) as archive:
        archive.extractall(code)
    return code


@dataclass
class ImportResult:
    runs: int
    process: dict[str, float]  # median wall time of the whole process, seconds
    imports: dict[str, float]  # median time of the imports inside it, seconds
    cpu: dict[str, float]  # median CPU time of the imports, seconds: steadier than wall time on a shared machine
    rss: dict[str, float]  # median peak RSS, MB
    ratios: list[float]  # ours deployed / official SDK, wall times of the imports in the same round, sorted


def bench_imports(runs: int) -> ImportResult:
    """Fresh processes, taking turns (floors, ours deployed and in the venv, official) so that drift hits them all
    alike; a first round, not counted, writes the bytecode caches (of the unpacked zip too)."""
    with tempfile.TemporaryDirectory(prefix="sweep-bench-zip-") as tmp:
        code = deployed_zip(Path(tmp))
        programs = {
            "python -c pass": ["-c", "pass"],
            "python -S -c pass": ["-S", "-c", "pass"],
            DEPLOYED: ["-S", "-c", ours(str(code))],  # no site-packages: the standard library and the zip
            IN_VENV: ["-c", ours("handler")],
            OFFICIAL_SDK: ["-c", OFFICIAL],
        }
        return _take_turns(runs, programs)


def _take_turns(runs: int, programs: dict[str, list[str]]) -> ImportResult:
    process: dict[str, list[float]] = {name: [] for name in programs}
    imports: dict[str, list[float]] = {name: [] for name in programs}
    cpu: dict[str, list[float]] = {name: [] for name in programs}
    rss: dict[str, list[float]] = {name: [] for name in programs}
    for round_ in range(runs + 1):
        for name, code in programs.items():
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, *code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
            )
            elapsed = time.perf_counter() - started
            if round_ == 0:
                continue
            process[name].append(elapsed)
            if code[-1] != "pass":
                took, peak, used = done.stdout.split()
                imports[name].append(float(took))
                cpu[name].append(float(used))
                rss[name].append(float(peak))
    return ImportResult(
        runs,
        {k: statistics.median(v) for k, v in process.items()},
        {k: statistics.median(v) for k, v in imports.items() if v},
        {k: statistics.median(v) for k, v in cpu.items() if v},
        {k: statistics.median(v) for k, v in rss.items() if v},
        sorted(o / f for o, f in zip(imports[DEPLOYED], imports[OFFICIAL_SDK], strict=True)),
    )


# Reporting ------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next(
            (ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")), cpu
        )
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = next((int(ln.split()[1]) for ln in meminfo.read_text().splitlines() if ln.startswith("MemTotal:")), 0)
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_version()} ({sys.executable})",
        "code": code_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def code_digest() -> str:
    """A digest of the function's code as it is on disk (each child imports it afresh)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "handler").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def code_version() -> str:
    """The commit measured, and whether the function's code differed from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "handler"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (
        f"commit {commit}" + (" with uncommitted changes in handler/" if dirty else "") + f", handler/ {code_digest()}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], left: int = 1) -> str:
    """A markdown table; the first `left` columns are text, the others numbers."""
    align = ["---" if i < left else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.0f} ms"


def megabytes(value: float) -> str:
    return f"{value:.1f} MB"


def fewest_calls(n: int, run: Run) -> dict[str, int]:
    """The fewest calls a sweep of n desktops can make: every page of 1,000, and after a full last page one more
    read (it shows that total_count did not understate the fleet: docs/reliability.md), every batch of 100 (desktops
    still building are not checked), and what was published packed into 256 KB messages (a bound that counts each
    part's repeated header: a part count above it is certainly more than needed)."""
    return {
        "list": n // LIST_PAGE + 1,
        "sysprep": math.ceil(run.child["checked"] / SYSPREP_BATCH),
        "publish": math.ceil(sum(run.published_bytes) / MESSAGE_MAX_BYTES),
    }


KINDS = ("list", "sysprep", "publish")


def sweep_table(results: Sequence[SizeResult], latency: float) -> str:
    rows = []
    for r in results:
        fewest = fewest_calls(r.n, r.ours)
        fill = sum(r.ours.published_bytes) / (len(r.ours.published_bytes) * MESSAGE_MAX_BYTES or 1)
        rows.append(
            [
                f"{r.n:,}",
                f"{r.findings:,}",
                " / ".join(f"{r.ours.counts[k]:,}" for k in KINDS),
                " / ".join(f"{fewest[k]:,}" for k in KINDS),
                f"{fill:.0%}",
                seconds(r.ours.wall),
                seconds(r.sequential.wall),
                f"{r.ours.wall / r.sequential.wall:.2f}",
                seconds(r.ours.calls * latency),
                seconds(r.ours.child["cpu"]),
                r.ours.peak_in_flight,
                megabytes(r.ours.child["rss_peak"]),
            ]
        )
    headers = [
        "desktops",
        "findings",
        "calls: list / sysprep / publish",
        "fewest possible",
        "publish fill",
        "wall, MAX_CONCURRENCY=8",
        "wall, =1 (sequential)",
        "ratio",
        "calls × latency",
        "function CPU",
        "peak in flight",
        "peak RSS",
    ]
    return table(headers, rows, left=0)


def baseline_table(results: Sequence[SizeResult]) -> str:
    measured = next(r for r in results if r.sdk_show is not None)
    assert measured.sdk_show is not None
    per_desktop = measured.sdk_show.wall / measured.n
    rows = []
    for r in results:
        if r.sdk_show is not None:
            show_calls, show_wall, mark = r.sdk_show.calls, r.sdk_show.wall, ""
        else:  # linear: one list call per 1,000 and one ShowSysprepInfo per checkable desktop
            show_calls = math.ceil(r.n / LIST_PAGE) + r.ours.child["checked"]
            show_wall, mark = per_desktop * r.n, "~"
        rows.append(
            [
                f"{r.n:,}",
                f"{r.ours.calls:,} in {seconds(r.ours.wall)}",
                f"{r.sdk_check.calls:,} in {seconds(r.sdk_check.wall)}",
                f"{r.ours.wall / r.sdk_check.wall:.3f}",
                f"{mark}{show_calls:,} in {mark}{seconds(show_wall)}",
                f"{mark}{r.ours.wall / show_wall:.4f}",
            ]
        )
    headers = [
        "desktops",
        "ours: calls in wall time",
        "official: ListDesktops + CheckSysprepInfo ×100, sequential",
        "ours / that",
        "official: ListDesktops + ShowSysprepInfo per desktop",
        "ours / that",
    ]
    return table(headers, rows, left=0)


def memory_table(results: Sequence[SizeResult]) -> str:
    few_findings = results[0].findings
    rows = []
    for r in results:
        few = r.few if r.few is not None else r.ours
        rows.append(
            [
                f"{r.n:,}",
                megabytes(few.child["rss_before"]),
                megabytes(few.child["rss_peak"]),
                f"{r.findings:,}",
                megabytes(r.ours.child["rss_peak"]),
            ]
        )
    headers = [
        "desktops",
        "RSS before the handler call",
        f"peak RSS, {few_findings:,} findings",
        "findings at 2% a kind",
        "peak RSS, 2% a kind",
    ]
    return table(headers, rows, left=0)


def throttle_section(t: ThrottleResult | None, unthrottled: Run | None, throttled: int) -> str:
    if t is None:
        return (
            "Not measured: `--throttled 0` asks for no throttled answers."
            if throttled < 1
            else "Not measured in this run (`--only`)."
        )
    run = t.run
    complete = run.child["checked"] + run.child["unchecked"] == t.n and not run.child["incomplete"]
    plain = seconds(unthrottled.wall) if unthrottled is not None else "not measured"
    buckets = list(t.buckets)
    while buckets and buckets[-1] == 0:  # the sweep had ended
        buckets.pop()
    return "\n\n".join(
        [
            (
                f"{t.n:,} desktops; {t.throttled} CheckSysprepInfo answers throttled (429 APIG.0308) once "
                f"{run.child['after']} had been answered."
            ),
            (
                f"Calls: {run.statuses[429]} throttled; {run.counts['sysprep']:,} sysprep in all (fewest "
                f"{math.ceil(run.child['checked'] / SYSPREP_BATCH):,}, plus one retry per throttled answer); wall "
                f"{seconds(run.wall)} (unthrottled {plain}); every desktop reported: "
                f"{'yes' if complete else 'NO'}."
            ),
            f"Most calls in flight before the first throttled answer: {t.before}; in each 20 ms after it: "
            + (", ".join(str(b) for b in buckets) or "none")
            + ".",
        ]
    )


def ratio_table(r: RatioResult, concurrency: int) -> str:
    rows = [
        [
            f"{r.n:,}",
            " / ".join(f"{r.ours.counts[k]:,}" for k in KINDS),
            seconds(r.ours.wall),
            seconds(r.sequential.wall),
            f"{r.ours.wall / r.sequential.wall:.2f}",
            seconds(r.ours.child["cpu"]),
            r.ours.peak_in_flight,
        ]
    ]
    headers = [
        "desktops",
        "calls: list / sysprep / publish",
        f"wall, MAX_CONCURRENCY={concurrency}",
        "wall, =1 (sequential)",
        "ratio",
        "function CPU",
        "peak in flight",
    ]
    return table(headers, rows, left=0)


def import_table(r: ImportResult) -> str:
    rows = [
        [
            name,
            seconds(r.process[name]),
            seconds(r.imports[name]) if name in r.imports else "–",
            seconds(r.cpu[name]) if name in r.cpu else "–",
            megabytes(r.rss[name]) if name in r.rss else "–",
        ]
        for name in r.process
    ]
    return table(["", "process wall time", "imports, in the process", "CPU of the imports", "peak RSS"], rows)


@dataclass
class Verdict:
    goal: str
    met: bool
    evidence: str


def verdicts(
    results: Sequence[SizeResult], imports: ImportResult | None, ratio_at: SizeResult | RatioResult | None
) -> list[Verdict]:
    """The goals that this run measured, in the full run's order."""
    goals = []
    if results:
        goals.append(calls_verdict(results))
    if ratio_at is not None:
        goals.append(speed_verdict(ratio_at))
    if results:
        goals += memory_verdicts(results)
    if imports is not None:
        goals.append(import_verdict(imports))
    return goals


def calls_verdict(results: Sequence[SizeResult]) -> Verdict:
    details, exact = [], True
    for r in results:
        fewest = fewest_calls(r.n, r.ours)
        exact &= all(r.ours.counts[k] == fewest[k] for k in KINDS)
        details.append(f"{r.n:,}: " + ", ".join(f"{k} {r.ours.counts[k]:,}/{fewest[k]:,}" for k in KINDS))
    return Verdict("a sweep makes the fewest calls (made/fewest)", exact, "; ".join(details))


def speed_verdict(r: SizeResult | RatioResult) -> Verdict:
    ratio = r.ours.wall / r.sequential.wall
    return Verdict(
        f"a {r.n:,}-desktop sweep takes ≤ {SPEED_GOAL} of the time of the same calls made sequentially",
        ratio <= SPEED_GOAL,
        f"{seconds(r.ours.wall)} / {seconds(r.sequential.wall)} = {ratio:.2f}",
    )


RSS_NOISE_MB = 2.0  # the peak RSS of identical runs differs by up to about this much
# A sweep remembers each desktop it listed, as a 128-bit int in a set (about 44 + 2 × 16 bytes with the set's slack),
# to find a desktop listed twice and, with a history, what is gone (handler/sysprep_guard/listing.py).
ID_BYTES = 160


def memory_verdicts(results: Sequence[SizeResult]) -> list[Verdict]:
    largest = results[-1]
    peak = largest.ours.child["rss_peak"]
    under = Verdict(
        f"a {largest.n:,}-desktop sweep peaks under {RSS_LIMIT_MB} MB RSS",
        peak < RSS_LIMIT_MB,
        f"{megabytes(peak)} with {largest.findings:,} findings",
    )
    # At equal findings, from the second size up (the smallest fleet fits one page: no page is fetched ahead).
    few = [(r.n, (r.few or r.ours).child["rss_peak"]) for r in results]
    base_n, base = few[1] if len(few) > 2 else few[0]
    top_n, top = few[-1]
    fleet_growth = top - base
    findings_growth = peak - top
    per_desktop = max(0.0, fleet_growth - RSS_NOISE_MB) * 1024 * 1024 / max(1, top_n - base_n)
    grows = Verdict(
        f"the peak grows with the findings; with the fleet only by the ids a sweep remembers (≤ {ID_BYTES} bytes a "
        "desktop, RSS noise aside)",
        per_desktop <= ID_BYTES,
        f"{base_n:,} → {top_n:,} desktops at {results[0].findings:,} findings: {fleet_growth:+.1f} MB "
        f"({fleet_growth * 1024 * 1024 / max(1, top_n - base_n):.0f} bytes a desktop); "
        f"{results[0].findings:,} → {largest.findings:,} findings at {top_n:,} desktops: {findings_growth:+.1f} MB "
        f"({findings_growth * 1024 / max(1, largest.findings - results[0].findings):.2f} KB a finding)",
    )
    return [under, grows]


def import_verdict(imports: ImportResult) -> Verdict:
    """Judged on CPU time, of ours as deployed: the imports are single-threaded work, and on a shared 2-core machine
    their wall time swings from round to round; wall times, and ours from handler/ in the venv, are shown beside."""
    ours, official = imports.cpu[DEPLOYED], imports.cpu[OFFICIAL_SDK]
    wall_ours, wall_official = imports.imports[DEPLOYED], imports.imports[OFFICIAL_SDK]
    in_venv = imports.cpu[IN_VENV]
    return Verdict(
        f"median cold import of the deployed zip ≤ {IMPORT_GOAL} of the official SDK clients'",
        ours <= official * IMPORT_GOAL,
        f"CPU {seconds(ours)} / {seconds(official)} = {ours / official:.2f}; wall {seconds(wall_ours)} / "
        f"{seconds(wall_official)} = {wall_ours / wall_official:.2f} (medians of {imports.runs}, imports only; wall "
        f"round by round {imports.ratios[0]:.2f} to {imports.ratios[-1]:.2f}); from handler/ in the venv: CPU "
        f"{seconds(in_venv)} = {in_venv / official:.2f}; whole processes {seconds(imports.process[DEPLOYED])} / "
        f"{seconds(imports.process[OFFICIAL_SDK])}",
    )


def prose(text: str) -> str:
    """One paragraph from text wrapped freely in the source."""
    return " ".join(text.split())


def render(
    args: argparse.Namespace,
    command: str,
    results: Sequence[SizeResult],
    imports: ImportResult | None,
    ratio_at: SizeResult | RatioResult | None,
    throttle: ThrottleResult | None,
) -> str:
    """The report; a section this run did not measure (`--only`, `--throttled 0`) is left out or says so."""
    goals = verdicts(results, imports, ratio_at if "ratio" in args.only else None)
    partial = set(args.only) != set(SECTIONS)
    sections = [
        "# Benchmark: timer sweeps against the local emulator",
        prose(f"""
            `{command}`: {args.latency * 1000:.0f} ms of latency injected on every call;
            MAX_CONCURRENCY={args.concurrency}; policy MIN_SYSPREP_VERSION={MIN_VERSION}; {args.repeat} run(s) of
            each sweep of ours (the median wall time, the highest peak RSS).
        """),
    ]
    if partial:
        sections.append(
            f"**A partial run: only {', '.join(s for s in SECTIONS if s in args.only)}.** The goals below are those "
            "it measured; the full report is `make bench`."
        )
    sections += [
        "\n".join(f"- {k}: {v}" for k, v in machine().items()),
        "## Goals",
        table(["goal", "met", "evidence"], [[v.goal, "yes" if v.met else "**NO**", v.evidence] for v in goals], 3)
        if goals
        else "None: no goal is judged on what this run measured.",
    ]
    if results:
        shown = next(r for r in results if r.sdk_show is not None)
        sections += [
            "## Sweeps",
            prose(f"""
                Calls as the emulator counted them. *Findings*: desktops reported, non-compliant or still building
                ({PER_KIND:.0%} of the fleet of each such kind). *Fewest possible*: floor(N/1000) + 1 pages (every
                page, and after a full last one a read that shows the count was not understated), ceil(checked/100)
                batches, ceil(bytes published/256 KB) messages. *Publish fill*: bytes published over 256 KB a message.
                *Ratio*: wall time over that of the same sweep with MAX_CONCURRENCY=1. *Calls ×
                latency*: the injected latency alone, made sequentially. *Function CPU*: CPU time of the child process
                (all its threads) during the handler call, at MAX_CONCURRENCY=8. *Peak in flight*: the most requests
                the emulator held at once. *Peak RSS*: VmHWM of the child process that ran the handler, read after the
                call.
            """),
            sweep_table(results, args.latency),
            "## Baselines: the official huaweicloudsdkworkspace client",
            prose(f"""
                ListDesktops page after page, then CheckSysprepInfo in batches of 100 one after another, or
                ShowSysprepInfo once per desktop. ShowSysprepInfo was measured on {shown.n:,} desktops only; `~` marks
                figures extrapolated linearly from it. The baselines only list and check; ours also judges, renders
                and publishes.
            """),
            baseline_table(results),
            "## Memory: findings against fleet size",
            prose(f"""
                Peak RSS of the child that ran the handler, for fleets holding {results[0].findings:,} findings (those
                of the {results[0].n:,}-desktop fleet) and {PER_KIND:.0%} of each kind.
            """),
            memory_table(results),
        ]
    elif isinstance(ratio_at, RatioResult):
        sections += [
            "## Speed ratio",
            prose(f"""
                The sweep of {ratio_at.n:,} desktops ({PER_KIND:.0%} of the fleet of each non-compliant kind) at
                MAX_CONCURRENCY={args.concurrency} and at 1, {args.repeat} run(s) of each (the median wall time); no
                baselines. *Function CPU*: CPU time of the child process during the handler call, at
                MAX_CONCURRENCY={args.concurrency}.
            """),
            ratio_table(ratio_at, args.concurrency),
        ]
    if "throttle" in args.only:
        sections += [
            "## Back-off under throttling",
            throttle_section(throttle, ratio_at.ours if ratio_at is not None else None, args.throttled),
        ]
    if imports is not None:
        sections += [
            "## Cold import",
            prose(f"""
                Fresh processes taking turns, {imports.runs} runs each, medians, bytecode cached alike. *Ours*:
                `import index`, then load_settings; *the deployed zip*: scripts/package's zip for this interpreter's
                Python (FunctionGraph's is the template's runtime), unpacked and run with `-S`, so from the standard
                library and the zip alone, as FunctionGraph runs it (the goal is judged on it); *handler/ in the venv*:
                the code in this repository with this venv's site-packages, which hold more than the zip (requests'
                character detection, huaweicloudsdkcore's declared dependencies). *Official SDK*: WorkspaceClient,
                SmnClient, the request classes of ListDesktops, CheckSysprepInfo, ShowSysprepInfo and PublishMessage,
                and BasicCredentials, in this venv, as their users run them. *Imports*: timed inside the process;
                *CPU of the imports*: the process's CPU time over the same span, which the goal is judged on (the
                imports are single-threaded, and their wall time on a shared 2-core machine swings from round to
                round); *process wall time*: the whole process, interpreter start-up included.
            """),
            import_table(imports),
        ]
    return "\n\n".join(sections) + "\n"


# Main -----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="fleet sizes, comma-separated")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the emulator adds to every call")
    parser.add_argument("--concurrency", type=int, default=8, help="the function's MAX_CONCURRENCY (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each sweep of ours (default 3)")
    parser.add_argument("--import-runs", type=int, default=15, help="cold imports of each kind (default 15)")
    parser.add_argument(
        "--throttled", type=int, default=3, help="sysprep answers throttled (default 3; 0: that scenario is not run)"
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"what to measure, comma-separated, of {', '.join(SECTIONS)} (default: all). `ratio` without `sweeps` "
        "runs only the 10,000-desktop sweep at MAX_CONCURRENCY and at 1; `--only cold-import,ratio` checks the two "
        "ratio goals in about a minute",
    )
    parser.add_argument("--quick", action="store_true", help="sizes 500,2000,5000, one run each, 5 cold imports")
    parser.add_argument("--out", type=Path, help="also write the report to this file (e.g. benchmarks/RESULTS.md)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeat, args.import_runs = "500,2000,5000", 1, 5
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown or not args.only:
        parser.error(f"--only takes some of {', '.join(SECTIONS)}, comma-separated; not {', '.join(unknown) or 'none'}")
    if args.throttled < 0:
        parser.error("--throttled must not be negative")
    if not args.sizes or args.sizes[0] < 1 or args.repeat < 1 or args.import_runs < 1 or args.latency < 0:
        parser.error("sizes, --repeat and --import-runs must be positive, --latency not negative")
    if not 1 <= args.concurrency <= 32:
        parser.error("--concurrency must be 1 to 32, as MAX_CONCURRENCY")
    return args


def missing_sdks() -> list[str]:
    return [m for m in ("huaweicloudsdkworkspace", "huaweicloudsdksmn") if importlib.util.find_spec(m) is None]


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_sdks()
    if missing:
        print(f"sweep: {', '.join(missing)} missing: pip install -r benchmarks/requirements.txt", file=sys.stderr)
        return 2
    command = " ".join(["python benchmarks/sweep.py", *(sys.argv[1:] if argv is None else argv)])
    before = code_digest()
    with tempfile.TemporaryDirectory(prefix="sweep-bench-pycache-") as cache:
        # Every child, ours and the official SDK's alike, loads bytecode from one cache that the first round
        # of each writes (PYTHONDONTWRITEBYTECODE would otherwise make ours compile its source at every import,
        # while pip precompiled the SDKs), and the repository gets no __pycache__ from the benchmark.
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = cache
        report = run_all(args, command)
    after = code_digest()
    if after != before:  # each child imported the code of its moment: the numbers mix versions
        report = (
            f"**handler/ changed during this run ({before} → {after}): its numbers mix versions; rerun.**\n\n" + report
        )
        progress(f"handler/ changed during the run ({before} → {after}): rerun")
    print(report)
    if args.out:
        args.out.write_text(report)
        progress(f"written to {args.out}")
    return 0 if after == before else 1


def ratio_size(sizes: Sequence[int]) -> int:
    """The fleet the speed ratio is judged on: 10,000 desktops, or the middle size when 10,000 is not swept."""
    return 10_000 if 10_000 in sizes else sizes[len(sizes) // 2]


def run_all(args: argparse.Namespace, command: str) -> str:
    only = set(args.only)
    imports = None
    if "cold-import" in only:
        progress(f"cold import, {args.import_runs} runs of each")
        imports = bench_imports(args.import_runs)
    results: list[SizeResult] = []
    ratio_at: SizeResult | RatioResult | None = None
    if "sweeps" in only:
        for n in args.sizes:
            progress(f"{n:,} desktops: ours ×{args.repeat} at {args.concurrency} and at 1, the official client")
            results.append(bench_size(n, args.latency, args.repeat, args.concurrency, smallest=args.sizes[0]))
        ratio_at = next(r for r in results if r.n == ratio_size(args.sizes))
    elif "ratio" in only:
        n = ratio_size(args.sizes)
        progress(f"{n:,} desktops: ours ×{args.repeat} at {args.concurrency} and at 1 (speed ratio only)")
        ratio_at = bench_ratio(n, args.latency, args.repeat, args.concurrency)
    throttle = None
    if "throttle" in only:
        if args.throttled < 1:
            progress("throttled sweep not run: --throttled 0")
        else:
            n = ratio_size(args.sizes)
            progress(f"{n:,} desktops, throttled")
            throttle = bench_throttle(n, args.latency, args.concurrency, args.throttled)
    return render(args, command, results, imports, ratio_at, throttle)


if __name__ == "__main__":
    sys.exit(main())
