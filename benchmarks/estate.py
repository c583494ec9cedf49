#!/usr/bin/env python3
"""Benchmark: an estate of 20 targets of 50,000 desktops each (1M desktops), fanned out, on the local emulator.

    python benchmarks/estate.py                                   # markdown on stdout (about 3 minutes)
    python benchmarks/estate.py --append benchmarks/RESULTS.md    # make bench: replaces this section there
    python benchmarks/estate.py --targets 3 --desktops 2000       # a quick check that it all works

One emulator (in this process) serves every target's project: the function's own project and others of its account
in two more regions, and one project of a member account reached through the agency it gave. Each run of the
function is a fresh child process (benchmarks/_child.py, mode `invoke`), as a FunctionGraph instance's cold start:
1. the reference: a single-project sweep of one target's fleet (no TARGETS), `--repeat` times (the median);
2. the fan-out: the estate sweep (TARGETS, events/estate-sweep.json) invokes the function asynchronously once per
   target; the emulator accepts each AsyncInvokeFunction and its worker starts a child process for the target's
   event and returns at once, so the targets' runs go side by side as FunctionGraph runs them, each in its own
   instance. Timed: the dispatching handler call; each target's run; the whole estate, from the dispatch's start
   to the last target's end; the CPU time of the children and of this process (the emulator);
3. in turn: the same estate with FAN_OUT=false, every target swept one after another in one invocation.

Traffic goes only to the emulator on 127.0.0.1. Every child has a timeout.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent)]

from sweep import (  # noqa: E402
    CHILD,
    CHILD_TIMEOUT,
    MIN_VERSION,
    PER_KIND,
    ROOT,
    RSS_LIMIT_MB,
    code_digest,
    machine,
    megabytes,
    progress,
    prose,
    seconds,
    table,
)

from devkit.emulator import FAKE_AK, FAKE_SK, FAKE_TOKEN, Emulator, Fleet  # noqa: E402
from devkit.samples import function_urn  # noqa: E402

SECTION = "## Estate: "  # every section this script writes starts so: --append replaces the one there
DISPATCH_LIMIT = 2.0  # seconds: the dispatching invocation
ABOUT = 1.25  # "about the time of": within a quarter
BUSY = 0.85  # the machine busy this share of a span or more: its CPU bound the span
OTHERS_NOTED = 0.05  # other processes took more than this share of the machine: the report says so
RSS_NOISE_MB = 2.0  # the peak RSS of identical runs differs by up to about this much (benchmarks/sweep.py)
KEYS = [FAKE_AK, FAKE_SK, FAKE_TOKEN]
REGIONS = ("cn-north-4", "eu-west-101")  # beside the function's own (the emulator's default region)
MEMBER_ACCOUNT, MEMBER_AGENCY = "acme-finance", "sysprep-audit"
WORK_KINDS = ("list", "sysprep", "publish")  # a sweep's calls
CALL_KINDS = {  # the function's call names, as it logs them, by the emulator's kinds
    "workspace ListDesktops": "list",
    "workspace CheckSysprepInfo": "sysprep",
    "smn PublishMessage": "publish",
}
INVOCATIONS = 60.0  # seconds the emulator's worker may take to start every target's child


@dataclass(frozen=True)
class Place:
    """One target: its name, region, project, and for the member account's, the account and agency."""

    name: str
    region: str
    project_id: str
    seed: int
    account: str | None = None
    agency: str | None = None

    @property
    def key(self) -> str:
        return f"{self.region}/{self.project_id}"

    @property
    def entry(self) -> str:
        reach = f"@{self.account}/{self.agency}" if self.account else ""
        return f"{self.name}={self.key}{reach}"


def estate(emu: Emulator, n: int) -> list[Place]:
    """The first target is the function's own project; the others take turns at the three regions, the last in a
    member account (the agency's path) when there are at least two."""
    places = []
    for i in range(1, n + 1):
        if i == 1:
            places.append(Place("t01", emu.region, emu.project_id, seed=1))
            continue
        region = (emu.region, *REGIONS)[(i - 1) % 3]
        project = hashlib.sha256(f"estate-benchmark-{i}".encode()).hexdigest()[:32]
        member = i == n
        places.append(
            Place(
                f"t{i:02d}",
                REGIONS[0] if member else region,
                project,
                seed=i,
                account=MEMBER_ACCOUNT if member else None,
                agency=MEMBER_AGENCY if member else None,
            )
        )
    return places


def stage(emu: Emulator, places: Sequence[Place], desktops: int) -> None:
    for place in places[1:]:
        fleet = Fleet.seeded(desktops, seed=place.seed, per_kind=PER_KIND)
        if place.account is not None:
            emu.add_account(place.account)
            emu.add_project(place.project_id, place.region, fleet, account=place.account)
            emu.add_agency(place.account, place.agency or "")
        else:
            emu.add_project(place.project_id, place.region, fleet)


# Children -------------------------------------------------------------------------------------------


@dataclass
class Spawned:
    """One child process running the function once; its result once it has exited."""

    label: str
    process: subprocess.Popen[bytes]
    result: Path
    log: Path
    stderr: Path
    spawned_at: float  # time.time()
    exited_at: float | None = None
    waiter: threading.Thread | None = None

    def wait(self) -> None:
        try:
            self.process.wait(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.exited_at = time.time()


def spawn(workdir: Path, label: str, spec: dict[str, Any]) -> Spawned:
    """Start _child.py `invoke` on spec; do not wait. A thread waits for it, noting when it exited."""
    result, log, stderr = (workdir / f"{label}.{ext}" for ext in ("json", "log", "err"))
    spec = {**spec, "result": str(result), "log": str(log)}
    command = [sys.executable, str(CHILD), "invoke", json.dumps(spec)]
    with stderr.open("w") as err:
        spawned_at = time.time()
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    child = Spawned(label, process, result, log, stderr, spawned_at)
    child.waiter = threading.Thread(target=child.wait, name=f"wait-{label}", daemon=True)
    child.waiter.start()
    return child


def finish(child: Spawned) -> dict[str, Any]:
    """Wait for the child; its result with when it was spawned and exited, and its log's warnings."""
    assert child.waiter is not None
    child.waiter.join()
    if child.process.returncode != 0 or not child.result.exists():
        tail = child.stderr.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{child.label}: the child failed ({child.process.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(child.result.read_text())
    result["spawned_at"], result["exited_at"] = child.spawned_at, child.exited_at
    result["log"] = read_log(child.log)
    return result


def read_log(path: Path) -> dict[str, Any]:
    """The function's log lines: how many of each level, the warnings and errors (a few), the calls retried (by
    kind), and when each run finished (time.time(), to the millisecond, as logged)."""
    levels: Counter[str] = Counter()
    notable: Counter[str] = Counter()
    retried: Counter[str] = Counter()
    finished = []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            levels["unreadable"] += 1
            continue
        levels[entry.get("level", "?")] += 1
        if entry.get("level") in ("WARNING", "ERROR", "CRITICAL"):
            detail = ": ".join(str(entry[k]) for k in ("call", "error") if entry.get(k))
            notable[f"{entry.get('message')}{f' ({detail})' if detail else ''}"[:300]] += 1
        if entry.get("message") == "retrying":
            retried[CALL_KINDS.get(entry.get("call", ""), "other")] += 1
        if entry.get("message") == "run finished":
            at = datetime.datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
            finished.append({"at": at.replace(tzinfo=datetime.timezone.utc).timestamp(), "target": entry.get("target")})
    return {"levels": dict(levels), "notable": dict(notable), "retried": dict(retried), "finished": finished}


def children_cpu() -> float:
    """CPU seconds of every child waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy() -> float | None:
    """CPU seconds this machine has spent busy since boot, all cores and all processes (the kernel's included)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user .. steal; guest is inside user already


def listen_overflows() -> int | None:
    """TcpExt ListenOverflows (connections the kernel refused for a full accept queue), this network namespace."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(row["ListenOverflows"]) if "ListenOverflows" in row else None
    return None


# Phases ---------------------------------------------------------------------------------------------


@dataclass
class Phase:
    """What the emulator saw during a phase, and this process's CPU time over it (the emulator's)."""

    counts: Counter[str]
    statuses: Counter[int]
    published: Counter[str]  # messages by their `target` attribute
    peak_in_flight: int
    emulator_cpu: float
    children_cpu: float
    overflows: int | None
    wall: float  # the phase's span, as this process saw it
    machine: float | None  # CPU seconds the whole machine was busy over it
    problems: list[str] = field(default_factory=list)

    @property
    def others(self) -> float | None:
        """CPU seconds of the machine's other processes (and of kernel work charged to no process) over the phase."""
        return None if self.machine is None else max(0.0, self.machine - self.emulator_cpu - self.children_cpu)


class Measure:
    """Clears the emulator's records and notes the CPU clocks at the start; `end()` reads both back."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        emu.clear_records()
        self.overflows = listen_overflows()
        self.machine = machine_busy()
        self.cpu, self.children, self.started = time.process_time(), children_cpu(), time.perf_counter()

    def end(self) -> Phase:
        cpu, children = time.process_time() - self.cpu, children_cpu() - self.children
        wall, machine = time.perf_counter() - self.started, machine_busy()
        emu = self.emu
        overflows = listen_overflows()
        published: Counter[str] = Counter()
        for message in emu.published:
            attributes = {a.get("name"): a.get("value") for a in message.body.get("message_attributes") or []}
            published[str(attributes.get("target"))] += 1
        phase = Phase(
            counts=emu.counts,
            statuses=Counter(status for _, status in emu.calls),
            published=published,
            peak_in_flight=emu.max_concurrency,
            emulator_cpu=cpu,
            children_cpu=children,
            overflows=None if overflows is None or self.overflows is None else overflows - self.overflows,
            wall=wall,
            machine=None if machine is None or self.machine is None else machine - self.machine,
        )
        if emu.rejected_signatures:
            phase.problems.append(f"the emulator rejected {emu.rejected_signatures} signature(s)")
        if emu.errors:
            phase.problems.append(f"emulator errors: {emu.errors[:3]}")
        unexpected = {s: n for s, n in phase.statuses.items() if not 200 <= s < 300}
        if unexpected:
            phase.problems.append(f"answers other than 2xx: {unexpected}")
        return phase


def sweep_problems(label: str, result: dict[str, Any], desktops: int) -> list[str]:
    """A run of one project that did not check every desktop, or failed, or published nothing."""
    returned = result.get("returned") or {}
    if result.get("error"):
        return [f"{label}: raised {result['error']}"]
    problems = []
    if returned.get("incomplete") or returned.get("errors"):
        problems.append(f"{label}: incomplete {returned.get('errors')}")
    covered = returned.get("checked", 0) + returned.get("counts", {}).get("unchecked", 0)
    if covered != desktops:
        problems.append(f"{label}: {covered:,} of {desktops:,} desktops checked or unchecked")
    if not returned.get("published"):
        problems.append(f"{label}: published nothing")
    return problems


@dataclass
class Reference:
    runs: list[dict[str, Any]]
    phases: list[Phase]

    @property
    def chosen(self) -> int:
        walls = [r["wall"] for r in self.runs]
        return walls.index(statistics.median_low(walls))

    @property
    def run(self) -> dict[str, Any]:
        return self.runs[self.chosen]

    @property
    def phase(self) -> Phase:
        return self.phases[self.chosen]

    @property
    def rss(self) -> float:
        return max(r["rss_peak"] for r in self.runs)


def reference(emu: Emulator, workdir: Path, user_data: dict[str, str], desktops: int, repeat: int) -> Reference:
    """The single-project sweep of the first target's fleet, alone on the machine."""
    runs, phases = [], []
    for n in range(repeat):
        measure = Measure(emu)
        spec = {"keys": KEYS, "user_data": user_data, "event_file": "events/timer.json", "brief": True}
        result = finish(spawn(workdir, f"reference-{n + 1}", spec))
        phase = measure.end()
        phase.problems += sweep_problems("reference", result, desktops)
        runs.append(result)
        phases.append(phase)
    return Reference(runs, phases)


@dataclass
class FanOut:
    dispatch: dict[str, Any]
    targets: dict[str, dict[str, Any]]  # by target key
    phase: Phase
    spawned: float  # when the dispatching child was started
    ended: float  # when the last child exited

    @property
    def span(self) -> float:
        """The whole estate: from the dispatching call's start to the end of the last target's call."""
        return max(t["ended_at"] for t in self.targets.values()) - self.dispatch["started_at"]

    @property
    def process_span(self) -> float:
        """The same, from starting the dispatching process to the last target's process exiting."""
        return self.ended - self.spawned


class Launcher:
    """The function the emulator's AsyncInvokeFunction runs: it starts a child process for the event and returns
    at once (the emulator's worker runs one invocation at a time; FunctionGraph runs each in its own instance)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.user_data: dict[str, str] = {}
        self.started: list[tuple[str, Spawned]] = []  # (target key, child)
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], request_id: str) -> str:
        key = str(event.get("target_sweep", {}).get("target"))
        spec = {"keys": KEYS, "user_data": self.user_data, "event": event, "request_id": request_id, "brief": True}
        with self._lock:
            label = f"target-{len(self.started) + 1:02d}"
            self.started.append((key, spawn(self.workdir, label, spec)))
        return label


def fan_out(emu: Emulator, launcher: Launcher, user_data: dict[str, str], places: Sequence[Place]) -> FanOut:
    launcher.user_data, launcher.started = user_data, []
    measure = Measure(emu)
    spec = {"keys": KEYS, "user_data": user_data, "event_file": "events/estate-sweep.json", "brief": True}
    dispatcher = spawn(launcher.workdir, "dispatch", spec)
    dispatch = finish(dispatcher)
    problems = []
    if not emu.wait_for_invocations(INVOCATIONS):
        problems.append(f"the emulator's worker had not started every target after {INVOCATIONS:.0f} s")
    targets: dict[str, dict[str, Any]] = {}
    for key, child in list(launcher.started):
        targets[key] = finish(child)
    ended = max([c.exited_at or 0.0 for _, c in launcher.started], default=time.time())
    phase = measure.end()
    phase.problems += problems
    returned = dispatch.get("returned") or {}
    if dispatch.get("error") or returned.get("mode") != "fan_out":
        phase.problems.append(f"the dispatch did not fan out: {dispatch.get('error') or returned.get('mode')}")
    dispatched = {t["target"]: t for t in returned.get("targets", [])}
    for place in places:
        t = dispatched.get(place.key)
        if t is None or t.get("error") or not t.get("request_id"):
            phase.problems.append(f"{place.name} not dispatched: {t}")
        elif place.key not in targets:
            phase.problems.append(f"{place.name} dispatched but its run never started")
    for invocation in emu.invocations:
        if invocation.error:
            phase.problems.append(f"the emulator's run of {invocation.request_id} raised {invocation.error}")
    return FanOut(dispatch, targets, phase, dispatcher.spawned_at, ended)


@dataclass
class InTurn:
    result: dict[str, Any]
    phase: Phase

    @property
    def wall(self) -> float:
        return float(self.result["wall"])


def in_turn(emu: Emulator, workdir: Path, user_data: dict[str, str], places: Sequence[Place]) -> InTurn:
    measure = Measure(emu)
    spec = {"keys": KEYS, "user_data": user_data, "event_file": "events/estate-sweep.json", "brief": True}
    result = finish(spawn(workdir, "in-turn", spec))
    phase = measure.end()
    returned = result.get("returned") or {}
    if result.get("error") or returned.get("mode") != "in_turn":
        phase.problems.append(f"FAN_OUT=false did not sweep in turn: {result.get('error') or returned.get('mode')}")
    for t in returned.get("targets", []):
        if t.get("error") or t.get("incomplete"):
            phase.problems.append(f"in turn, {t.get('name') or t['target']}: {t.get('error') or 'incomplete'}")
    if len(returned.get("targets", [])) != len(places):
        phase.problems.append(f"in turn: {len(returned.get('targets', []))} of {len(places)} targets swept")
    return InTurn(result, phase)


# Reporting ------------------------------------------------------------------------------------------


def calls(counts: Counter[str], kinds: Sequence[str] = WORK_KINDS) -> str:
    return " / ".join(f"{counts.get(k, 0):,}" for k in kinds)


def spread(values: Sequence[float], show: Any) -> str:
    return f"{show(min(values))} / {show(statistics.median(values))} / {show(max(values))}"


def render(
    args: argparse.Namespace,
    command: str,
    places: Sequence[Place],
    ref: Reference,
    fan: FanOut,
    turn: InTurn | None,
) -> str:
    n, d = len(places), args.desktops
    cores = os.cpu_count() or 1
    targets = [fan.targets[p.key] for p in places if p.key in fan.targets]
    walls = [t["wall"] for t in targets]
    cpus = [t["cpu"] for t in targets]
    rsses = [t["rss_peak"] for t in targets]
    r = ref.run
    per_target = Counter({k: v / n for k, v in fan.phase.counts.items()})
    dispatch_wall = fan.dispatch["wall"]
    dispatch_process = fan.dispatch["exited_at"] - fan.dispatch["spawned_at"]
    slowest = max(walls)
    members = [p for p in places if p.account]

    # The goals --------------------------------------------------------------------------------------
    # A retry is a call the emulator counted twice: the work is the same (a starved emulator's ReadTimeouts, say).
    retried: Counter[str] = Counter()
    for t in targets:
        retried.update(t["log"]["retried"])
    same_calls = all(
        fan.phase.counts.get(k, 0) - retried[k] == n * ref.phase.counts.get(k, 0) for k in ("list", "sysprep")
    )
    publish_ok = fan.phase.counts.get("publish", 0) <= n * ref.phase.counts.get("publish", 0) + n
    rss_ok = max(rsses) <= ref.rss + RSS_NOISE_MB and max(rsses) < RSS_LIMIT_MB
    cpu_ok = max(cpus) <= ABOUT * r["cpu"]
    goals = [
        [
            f"dispatch ≤ {DISPATCH_LIMIT:.0f} s",
            dispatch_wall <= DISPATCH_LIMIT,
            (
                f"the dispatching handler call {seconds(dispatch_wall)} ({n} AsyncInvokeFunction calls); its whole "
                f"process, cold start included, {seconds(dispatch_process)}"
            ),
        ],
        [
            (
                "each target's run does the single-project work: the same calls, CPU within "
                f"{ABOUT - 1:.0%}, peak RSS within {RSS_NOISE_MB:.0f} MB"
            ),
            same_calls and publish_ok and rss_ok and cpu_ok,
            (
                f"calls list / sysprep / publish per target {calls(per_target)} against "
                f"{calls(ref.phase.counts)} alone"
                + (f" (retries among them, in all: {calls(retried)})" if retried else "")
                + f"; handler CPU max {seconds(max(cpus))} against {seconds(r['cpu'])} "
                f"(×{max(cpus) / r['cpu']:.2f}); peak RSS max {megabytes(max(rsses))} against {megabytes(ref.rss)}"
            ),
        ],
        [
            "each target's run within the single-project wall time",
            slowest <= ABOUT * r["wall"],
            (
                f"target wall min / median / max {spread(walls, seconds)} against {seconds(r['wall'])} alone "
                f"(×{statistics.median(walls) / r['wall']:.1f} median): {n} runs share {cores} cores"
            ),
        ],
        [
            "the whole estate in about the time of its largest target (alone, as on its own instance)",
            fan.span <= ABOUT * r["wall"],
            (
                f"{seconds(fan.span)} from the dispatch's start to the last target's end, against {seconds(r['wall'])} "
                f"for one {d:,}-desktop target alone: ×{fan.span / r['wall']:.1f}; against the slowest target's own "
                f"run in this estate, {seconds(slowest)}: ×{fan.span / slowest:.2f}"
            ),
        ],
    ]
    if turn is not None:
        goals.append(
            [
                "the whole estate faster than sweeping the targets one after another (ratio reported)",
                fan.span < turn.wall,
                (
                    f"{seconds(fan.span)} / {seconds(turn.wall)} (FAN_OUT=false, one invocation) = "
                    f"{fan.span / turn.wall:.2f}"
                ),
            ]
        )
    goal_table = table(["goal", "met", "evidence"], [[g, "yes" if ok else "**NO**", e] for g, ok, e in goals], 3)

    # Runs -------------------------------------------------------------------------------------------
    def run_row(label: str, wall: float, cpu: float, process_cpu: str, rss: str, count: str, cold: str) -> list[str]:
        return [label, seconds(wall), seconds(cpu), process_cpu, rss, count, cold]

    rows = [
        run_row(
            f"single project, {d:,} desktops, alone (median of {len(ref.runs)})",
            r["wall"],
            r["cpu"],
            seconds(r["cpu_process"]),
            megabytes(ref.rss),
            calls(ref.phase.counts),
            seconds(r["started_at"] - r["spawned_at"]),
        ),
        run_row(
            f"the dispatch ({n} targets)",
            dispatch_wall,
            fan.dispatch["cpu"],
            seconds(fan.dispatch["cpu_process"]),
            megabytes(fan.dispatch["rss_peak"]),
            f"{fan.phase.counts.get('invoke_async', 0):,} AsyncInvokeFunction",
            seconds(fan.dispatch["started_at"] - fan.dispatch["spawned_at"]),
        ),
        [
            f"each target, side by side: min / median / max of {len(targets)}",
            spread(walls, seconds),
            spread(cpus, seconds),
            spread([t["cpu_process"] for t in targets], seconds),
            spread(rsses, megabytes),
            f"{calls(per_target)} (mean)",
            spread([t["started_at"] - t["spawned_at"] for t in targets], seconds),
        ],
    ]
    if turn is not None:
        tr = turn.result
        rows.append(
            run_row(
                f"in turn (FAN_OUT=false): all {n} in one invocation",
                tr["wall"],
                tr["cpu"],
                seconds(tr["cpu_process"]),
                megabytes(tr["rss_peak"]),
                calls(turn.phase.counts),
                seconds(tr["started_at"] - tr["spawned_at"]),
            )
        )
    run_table = table(
        ["run", "wall (handler call)", "CPU (handler call)", "CPU (whole process)", "peak RSS", "calls", "cold start"],
        rows,
        left=1,
    )

    # Per target ---------------------------------------------------------------------------------------
    start = fan.dispatch["started_at"]
    ends = {}
    if turn is not None:
        previous = turn.result["started_at"]
        for finished in turn.result["log"]["finished"]:
            ends[finished["target"]] = finished["at"] - previous
            previous = finished["at"]
    target_rows = []
    for place in places:
        t = fan.targets.get(place.key)
        if t is None:
            target_rows.append([place.name, place.region, place.account or "–", "not run", "", "", "", "", "", ""])
            continue
        returned = t.get("returned") or {}
        where = next((w for w in ends if w and w.startswith(f"{place.name}:")), None)
        target_rows.append(
            [
                place.name,
                place.region,
                f"{place.account} (agency)" if place.account else "own",
                f"+{seconds(t['started_at'] - start)}",
                seconds(t["wall"]),
                seconds(t["cpu"]),
                megabytes(t["rss_peak"]),
                f"{returned.get('checked', 0):,} / {returned.get('counts', {}).get('non_compliant', 0):,}",
                f"{fan.phase.published.get(place.name, 0)} ({len(returned.get('published', []))})",
                seconds(ends[where]) if where is not None else "–",
            ]
        )
    per_target_table = table(
        [
            "target",
            "region",
            "account",
            "started (after the dispatch's start)",
            "wall",
            "CPU",
            "peak RSS",
            "checked / non-compliant",
            "messages published (its summary says)",
            "its run in turn",
        ],
        target_rows,
        left=3,
    )

    # What bound the wall time -----------------------------------------------------------------------
    ph = fan.phase
    ours = ph.children_cpu + ph.emulator_cpu
    phases = {"the reference (one run)": ref.phase, "the fan-out": ph}
    if turn is not None:
        phases["in turn"] = turn.phase

    def busy(phase: Phase) -> str:
        return "unknown" if phase.machine is None else f"{phase.machine / (cores * phase.wall):.0%}"

    def other(phase: Phase) -> str:
        return "unknown" if phase.others is None else seconds(phase.others)

    bound_rows = [
        ["span (this process's view)", *(seconds(x.wall) for x in phases.values())],
        ["CPU: the function's processes (imports included)", *(seconds(x.children_cpu) for x in phases.values())],
        ["CPU: the emulator (this process)", *(seconds(x.emulator_cpu) for x in phases.values())],
        ["CPU: other processes on the machine, and the kernel's work charged to none", *map(other, phases.values())],
        [f"the machine busy, of {cores} cores × the span", *map(busy, phases.values())],
        ["the emulator, of one core (one Python process: about one core at most)",
         *(f"{x.emulator_cpu / x.wall:.0%}" for x in phases.values())],
        ["the emulator's CPU a call", *(f"{x.emulator_cpu * 1000 / max(1, sum(x.counts.values())):.2f} ms"
                                        for x in phases.values())],
        [f"the shortest span this machine allows: our CPU / {cores} cores",
         *(seconds((x.children_cpu + x.emulator_cpu) / cores) for x in phases.values())],
    ]  # fmt: skip
    bound_table = table(["CPU time", *phases], bound_rows, left=1)
    shared = {name: x.others / (cores * x.wall) for name, x in phases.items() if x.others is not None}
    crowded = {name: share for name, share in shared.items() if share > OTHERS_NOTED}

    # Calls and what the emulator saw ----------------------------------------------------------------------
    kinds = sorted(ph.counts, key=lambda k: (-ph.counts[k], k))
    observed = [
        (
            f"calls by kind, the fan-out: {', '.join(f'{k} {ph.counts[k]:,}' for k in kinds)}; statuses "
            f"{', '.join(f'{s}: {c:,}' for s, c in sorted(ph.statuses.items()))}; at most {ph.peak_in_flight} "
            "requests in flight at once"
        )
    ]
    if turn is not None:
        tk = sorted(turn.phase.counts, key=lambda k: (-turn.phase.counts[k], k))
        observed.append(
            f"calls by kind, in turn: {', '.join(f'{k} {turn.phase.counts[k]:,}' for k in tk)}; at most "
            f"{turn.phase.peak_in_flight} in flight"
        )
    observed.append(
        f"messages published, the fan-out: {sum(ph.published.values()):,}, every target's by its `target` "
        f"attribute: {'yes' if all(ph.published.get(p.name) for p in places) else 'NO'}"
    )
    if members:
        observed.append(
            f"the member account's target ({', '.join(p.name for p in members)}) assumed its agency: "
            f"{ph.counts.get('assume', 0)} IAM call(s)"
        )
    if ph.overflows is not None:
        observed.append(
            f"the kernel's listen-queue overflows (TcpExt ListenOverflows: connections to the emulator the kernel "
            f"dropped for a full accept queue) during the fan-out: {ph.overflows:,}; the reference: "
            f"{ref.phase.overflows}" + (f"; in turn: {turn.phase.overflows}" if turn is not None else "")
        )
    runs = {"the reference": ref.runs, "the fan-out": [fan.dispatch, *targets]}
    if turn is not None:
        runs["in turn"] = [turn.result]
    for name, results in runs.items():
        warnings: Counter[str] = Counter()
        for result in results:
            warnings.update(result["log"]["notable"])
        observed.append(
            f"the function's warnings and errors, {name}: "
            + ("; ".join(f"{m} ×{c}" for m, c in warnings.most_common(4)) if warnings else "none")
            + (f" (and {len(warnings) - 4} other kinds)" if len(warnings) > 4 else "")
        )
    problems = [*ref.phase.problems, *ph.problems, *(turn.phase.problems if turn else [])]
    for place in places:
        if place.key in fan.targets:
            problems += sweep_problems(place.name, fan.targets[place.key], d)
    observed.append("problems: " + ("; ".join(problems[:10]) if problems else "none: every run complete, no error"))

    machine_busy_share = None if ph.machine is None else ph.machine / (cores * ph.wall)
    explain = prose(f"""
        This machine has {cores} cores. On FunctionGraph each target's run has an instance of its own, so the
        estate would take about the time of its largest target: a {d:,}-desktop target alone took
        {seconds(r["wall"])} here ({seconds(r["cpu"])} of CPU in the handler call), and the dispatch
        {seconds(dispatch_wall)}. Here the {n} targets' processes and the emulator (one Python process answering
        every request of every target) share {cores} cores: in the fan-out they used {seconds(ours)} of CPU
        ({seconds(ph.children_cpu)} the function's processes, cold starts included, {seconds(ph.emulator_cpu)} the
        emulator's) in {seconds(ph.wall)}; that CPU alone needs {seconds(ours / cores)} of {cores} cores.
    """)
    if machine_busy_share is not None and machine_busy_share >= BUSY:
        explain += " " + prose(f"""
            The machine was busy {machine_busy_share:.0%} of the fan-out's span: the estate's span is bound by this
            machine's CPU, not by the function's waiting on calls, and "the time of its largest target" cannot hold
            here the way it would on separate instances. Each target's run lasts about as long as the estate's
            because its CPU is interleaved with the others': its wall time is
            ×{statistics.median(walls) / r["wall"]:.0f} the run alone, its CPU time
            ×{statistics.median(cpus) / r["cpu"]:.2f} (medians).
        """)
    elif machine_busy_share is not None:
        explain += " " + prose(f"""
            The machine was busy {machine_busy_share:.0%} of the fan-out's span, not all of it: part of the span is
            waiting, on the calls' latency and on the cold starts
            ({spread([t["started_at"] - t["spawned_at"] for t in targets], seconds)} from starting a target's
            process to its handler call).
        """)
    if crowded:
        explain += " " + prose(f"""
            **The machine was shared:** other processes (and kernel work charged to none) took
            {", ".join(f"{share:.0%} of it during {name}" for name, share in crowded.items())}; those phases' wall
            times are longer than on a quiet machine, their CPU times less so.
        """)
    if turn is not None:
        turn_cpu = turn.phase.children_cpu + turn.phase.emulator_cpu
        explain += " " + prose(f"""
            The same work in turn, one invocation sweeping the {n} targets one after another ({seconds(turn.wall)},
            {seconds(turn.wall / n)} a target), used {seconds(turn_cpu)} of CPU ({seconds(turn.phase.children_cpu)}
            the function's process, {seconds(turn.phase.emulator_cpu)} the emulator's): {turn_cpu / turn.phase.wall:.2f}
            cores on average, against {ours / ph.wall:.2f} in the fan-out. With an instance per target the ratio
            would be about one target's time over the sum, {r["wall"] / turn.wall:.2f} here; on {cores} cores it is
            {fan.span / turn.wall:.2f}.
        """)

    member_text = f", and {len(members)} in a member account reached through its agency" if members else ""
    setup = prose(f"""
        `{command}`: {n} targets of {d:,} desktops ({n * d:,} in all), {PER_KIND:.0%} of each fleet of each
        non-compliant kind, MIN_SYSPREP_VERSION={MIN_VERSION}, MAX_CONCURRENCY={args.concurrency},
        {args.latency * 1000:.0f} ms of latency on every call. The targets are projects in
        {len({p.region for p in places})} regions, of the function's own account{member_text}; one emulator, in
        the benchmark's process, serves them all. Each run of the function is a fresh process (a cold start): the
        reference, a single-project sweep of the first target's fleet without TARGETS, {len(ref.runs)} time(s),
        alone on the machine (the median wall time, the highest peak RSS); the estate sweep
        (events/estate-sweep.json with TARGETS), whose {n} AsyncInvokeFunction calls the emulator accepts and
        answers, its worker starting a process for each target's event at once, so that the targets' runs go side
        by side as on FunctionGraph's separate instances; then the same estate with FAN_OUT=false, swept in turn in
        one invocation. *Wall* and *CPU* are those of the handler call; *the whole estate* runs from the
        dispatching call's start to the last target's call's end; *cold start* from starting the process to the
        handler call.
    """)
    sections = [
        f"{SECTION}{n} targets of {d:,} desktops",
        setup,
        "\n".join(f"- {k}: {v}" for k, v in machine().items()),
        goal_table,
        run_table,
        per_target_table,
        "What the emulator saw:\n\n" + "\n".join(f"- {o}" for o in observed),
        bound_table,
        explain,
    ]
    return "\n\n".join(sections) + "\n"


def append(path: Path, section: str) -> None:
    """Put the section at the end of the file, in place of the one a previous run left there."""
    text = path.read_text() if path.exists() else ""
    at = text.find("\n" + SECTION)
    if text.startswith(SECTION):
        at = 0
    if at >= 0:
        text = text[:at]
    path.write_text(text.rstrip("\n") + "\n\n" + section if text.strip() else section)


# Main -----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=20, help="targets in the estate (default 20)")
    parser.add_argument("--desktops", type=int, default=50_000, help="desktops in each target (default 50,000)")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the emulator adds to every call")
    parser.add_argument("--concurrency", type=int, default=8, help="the function's MAX_CONCURRENCY (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the single-project reference (default 3)")
    parser.add_argument("--no-in-turn", action="store_true", help="skip the FAN_OUT=false sweep (the longest part)")
    parser.add_argument("--append", type=Path, help="also put the section at the end of this file (RESULTS.md)")
    args = parser.parse_args(argv)
    if not 2 <= args.targets <= 99 or args.desktops < 1 or args.repeat < 1 or args.latency < 0:
        parser.error("--targets must be 2 to 99, --desktops and --repeat positive, --latency not negative")
    if not 1 <= args.concurrency <= 32:
        parser.error("--concurrency must be 1 to 32, as MAX_CONCURRENCY")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join(["python benchmarks/estate.py", *(sys.argv[1:] if argv is None else argv)])
    started = time.perf_counter()
    before = code_digest()
    with tempfile.TemporaryDirectory(prefix="estate-bench-") as tmp:
        workdir = Path(tmp)
        # As benchmarks/sweep.py: the children load bytecode from one cache that the first child writes, and the
        # repository gets no __pycache__ from the benchmark.
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
        # Written before any run: no child, the dispatching one above all, compiles a module inside its timed call.
        subprocess.run([sys.executable, "-m", "compileall", "-q", "handler", "devkit"], cwd=ROOT, check=True)
        fleet = Fleet.seeded(args.desktops, seed=1, per_kind=PER_KIND)
        with Emulator(fleet=fleet, latency=args.latency) as emu:
            places = estate(emu, args.targets)
            stage(emu, places, args.desktops)
            launcher = Launcher(workdir)
            emu.add_function(function_urn(emu), launcher)
            policy = {"MIN_SYSPREP_VERSION": MIN_VERSION, "MAX_CONCURRENCY": str(args.concurrency)}
            single = emu.settings(**policy)
            targets = " ".join(p.entry for p in places)
            fanned = emu.settings(**policy, TARGETS=targets)
            progress(f"the reference: one project of {args.desktops:,} desktops alone, ×{args.repeat}")
            ref = reference(emu, workdir, single, args.desktops, args.repeat)
            progress(f"the fan-out: {args.targets} targets of {args.desktops:,} desktops side by side")
            fan = fan_out(emu, launcher, fanned, places)
            turn = None
            if not args.no_in_turn:
                progress(f"in turn (FAN_OUT=false): {args.targets} targets one after another in one invocation")
                turn = in_turn(emu, workdir, {**fanned, "FAN_OUT": "false"}, places)
    section = render(args, command, places, ref, fan, turn)
    after = code_digest()
    if after != before:  # each child imported the code of its moment: the numbers mix versions
        title, _, rest = section.partition("\n\n")
        warning = f"**handler/ changed during this run ({before} → {after}): its numbers mix versions; rerun.**"
        section = f"{title}\n\n{warning}\n\n{rest}"
        progress(f"handler/ changed during the run ({before} → {after}): rerun")
    print(section)
    if args.append:
        append(args.append, section)
        progress(f"written to {args.append} ({time.perf_counter() - started:.0f} s)")
    return 0 if after == before else 1


if __name__ == "__main__":
    sys.exit(main())
