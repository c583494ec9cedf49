"""The cloud behind the sample events (events/*.json): their desktops and jobs, staged on an emulator.

scripts/invoke runs a sample against it, and the tests run every sample through it, so each sample finds
something: desktops made or re-imaged by the sample's job, some of them non-compliant under the local policy
(Sysprep version >= 3.0.10, hibernation and route update supported). `drift` changes the fleet a little from one
simulated night to the next (scripts/invoke --nights), so that a run history has something to show.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .emulator import BUILDING, COMPLIANT, KINDS, REBUILDING, Emulator, Fleet, Sysprep
from .emulator.cli import DEFAULT_BUCKET

LOCAL_POLICY = {"MIN_SYSPREP_VERSION": "3.0.10", "REQUIRE_HIBERNATE": "true", "REQUIRE_UPDATE_ROUTE": "true"}
# The local run history: written by scripts/invoke --nights, read by scripts/history, through the emulator's OBS.
HISTORY_BUCKET = DEFAULT_BUCKET
HISTORY_DIR = Path(__file__).resolve().parent.parent / ".devkit" / "history"


def shown(path: Path) -> str:
    """A path as its reader would type it: relative to the current directory when under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def desktop(n: int) -> str:
    return f"3f2c1a4e-9b7d-4c2a-8e1f-0a1b2c3d4e{n:02d}"


def job(n: int) -> str:
    return f"8a2b4c6d-0e1f-4a3b-9c5d-7e9f0a1b2c{n:02d}"


@dataclass(frozen=True)
class Made:
    """A desktop a sample's job makes: its name, user and the Sysprep it has once made."""

    name: str
    user: str
    sysprep: Sysprep | None


@dataclass(frozen=True)
class SampleJob:
    job_id: str
    creates: dict[str, Made] = field(default_factory=dict)
    rebuilds: dict[str, Sysprep] = field(default_factory=dict)  # desktop -> its Sysprep once re-imaged


# Desktops that exist before any sample runs (the manual, resource-id and re-imaging samples name them).
EXISTING = {
    desktop(1): Made("fin-desk-01", "carol", Sysprep(version="3.1.2")),
    desktop(2): Made("fin-desk-02", "dave", Sysprep(version="3.0.2")),
    desktop(3): Made("ops-desk-03", "erin", Sysprep(version="3.0.10", hibernate=False)),
    desktop(4): Made("fin-desk-04", "frank", Sysprep(version="3.0.12")),
}
JOBS = (
    SampleJob(  # events/cts-create-desktops.json
        job(1),
        creates={
            desktop(10): Made("eng-desk-10", "alice", Sysprep(version="3.1.2", update_route=False)),
            desktop(11): Made("eng-desk-11", "bob", Sysprep(version="3.1.2")),
        },
    ),
    SampleJob(  # events/cts-create-desktop-order.json
        job(2),
        creates={
            desktop(20): Made("sales-desk-20", "grace", Sysprep(version="3.1.2")),
            desktop(21): Made("sales-desk-21", "heidi", Sysprep(version="3.0.2")),
        },
    ),
    SampleJob(job(3), creates={desktop(30): Made("hr-desk-30", "ivan", Sysprep(hibernate=False))}),  # createOrder
    SampleJob(  # events/cts-create-desktop-pool.json
        job(4),
        creates={
            desktop(40): Made("pool-lab-40", "pool", Sysprep(version="3.1.2")),
            desktop(41): Made("pool-lab-41", "pool", Sysprep(version=None)),
        },
    ),
    SampleJob(job(5), creates={desktop(42): Made("pool-lab-42", "pool", Sysprep())}),  # expandDesktopPool
    SampleJob(  # events/cts-rebuild-desktops.json
        job(6), rebuilds={desktop(1): Sysprep(version="3.0.8"), desktop(4): Sysprep(version="3.1.2")}
    ),
    SampleJob(job(7), rebuilds={desktop(2): Sysprep(version="3.1.2")}),  # events/cts-change-image-order.json
    SampleJob(job(8), creates={desktop(12): Made("ops-desk-12", "judy", Sysprep(hibernate=False))}),  # eventgrid
)


SAMPLE_DESKTOPS = len(EXISTING) + sum(len(sample.creates) for sample in JOBS)  # added to every local fleet


def fleet(seeded: int = 40, seed: int = 1) -> Fleet:
    """A seeded fleet, then every sample's desktops (those a job makes are there already, as they will be made)."""
    fleet = Fleet.seeded(seeded, seed=seed)
    made = {**EXISTING, **{d: m for sample in JOBS for d, m in sample.creates.items()}}
    for desktop_id, m in made.items():
        fleet.add(m.sysprep, desktop_id=desktop_id, computer_name=m.name, user_name=m.user)
    return fleet


def stage(emulator: Emulator, event: Any) -> list[str]:
    """Script the jobs this event names, so that its desktops are being made (or re-imaged) until the job ends;
    the ids of the jobs staged. The emulator's fleet must come from `fleet()`."""
    text = json.dumps(event)
    staged = []
    for sample in JOBS:
        if sample.job_id not in text:
            continue
        if sample.creates:
            emulator.add_creation_job(sample.job_id, list(sample.creates), running=0)
        else:
            emulator.add_rebuild_job(sample.job_id, sample.rebuilds, running=0)
        staged.append(sample.job_id)
    return staged


# Sample desktops non-compliant under the local policy that no re-imaging sample names: those drift may delete.
DELETABLE = (desktop(21), desktop(30), desktop(41))
DRIFTED = "drifted"  # the kind of a desktop drift made non-compliant
_FAILURES = (Sysprep(version="3.0.8"), Sysprep(hibernate=False), Sysprep(update_route=False))
_NON_COMPLIANT_KINDS = tuple(kind for kind in KINDS if kind not in (COMPLIANT, BUILDING))


@dataclass(frozen=True)
class Drift:
    """What changed in the fleet overnight, by desktop id."""

    broken: tuple[str, ...] = ()  # compliant, now not
    fixed: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()  # non-compliant, now for another reason
    rebuilding: tuple[str, ...] = ()  # being re-imaged tonight: not judged (not_ready)
    names: Mapping[str, str] = field(default_factory=dict)  # desktop id -> computer name, deleted ones included

    def __str__(self) -> str:
        parts = [
            f"{len(ids)} {what} ({', '.join(self.names.get(i, i) for i in ids)})"
            for what, ids in (
                ("fell out of compliance", self.broken),
                ("fixed", self.fixed),
                ("deleted", self.deleted),
                ("failing another way", self.changed),
                ("being re-imaged", self.rebuilding),
            )
            if ids
        ]
        return "; ".join(parts) or "no change"


def drift(fleet: Fleet, night: int) -> Drift:
    """Change the fleet before night `night` (1, the first, has nothing to change from), the same way every time:
    one non-compliant desktop is fixed and one or two compliant ones fall out of compliance each night; every third
    night a non-compliant sample desktop is deleted, every fourth one an earlier broken desktop fails another way,
    and every fifth two compliant ones are being re-imaged (done by the next night)."""
    if night < 2:
        return Drift()
    rng = random.Random(f"drift:{fleet.seed}:{night}")
    names = {d.desktop_id: d.computer_name for d in fleet}
    for desktop_id in fleet.ids(REBUILDING):  # last night's re-imaging is done
        fleet.update(desktop_id, task_status=None, kind=COMPLIANT)
    drifted = fleet.ids(DRIFTED)  # before tonight's: a desktop is not broken and fixed in one night

    fixable = sorted({*drifted, *(d for kind in _NON_COMPLIANT_KINDS for d in fleet.ids(kind))})
    fixed = tuple(rng.sample(fixable, min(1, len(fixable))))
    for desktop_id in fixed:
        fleet.update(desktop_id, sysprep=Sysprep(), kind="fixed")

    compliant = fleet.ids(COMPLIANT)
    broken = tuple(rng.sample(compliant, min(1 + night % 2, len(compliant))))
    for desktop_id in broken:
        fleet.update(desktop_id, sysprep=rng.choice(_FAILURES), kind=DRIFTED)

    deleted: tuple[str, ...] = ()
    present = [d for d in DELETABLE if d in fleet]
    if night % 3 == 0 and present:
        deleted = (present[0],)
        fleet.remove(present[0])

    changed: tuple[str, ...] = ()
    still = [d for d in drifted if d not in fixed]
    if night % 4 == 0 and still:
        desktop_id = rng.choice(still)
        other = [f for f in _FAILURES if f != fleet[desktop_id].sysprep]
        fleet.update(desktop_id, sysprep=rng.choice(other), kind=DRIFTED)
        changed = (desktop_id,)

    rebuilding: tuple[str, ...] = ()
    if night % 5 == 0:
        compliant = fleet.ids(COMPLIANT)
        rebuilding = tuple(rng.sample(compliant, min(2, len(compliant))))
        for desktop_id in rebuilding:
            fleet.update(desktop_id, task_status=REBUILDING, kind=REBUILDING)
    return Drift(broken, fixed, deleted, changed, rebuilding, names)


# The estate (events/estate-sweep.json): three targets, the sample project ("hq"), a project of the same account in
# another region ("eu"), and a member account's project reached through the agency it gave ("finance"), whose
# fleet has a kiosk exempt by tag until a date.
ESTATE_ACCOUNT, ESTATE_AGENCY = "acme-finance", "sysprep-audit"
EU_PROJECT, EU_REGION = "5f6e7d8c9b0a1f2e3d4c5b6a79880716", "eu-west-101"
FINANCE_PROJECT, FINANCE_REGION = "0a1b2c3d4e5f67890a1b2c3d4e5f6789", "cn-north-4"
EXEMPT_TAG = "sysprep-exempt"
# What a sample needs set beside LOCAL_POLICY to show what it is about, by file name.
SAMPLE_SETTINGS: dict[str, Callable[[Emulator], dict[str, str]]] = {
    "estate-sweep.json": lambda emu: {"TARGETS": estate_targets(emu), "EXEMPT_TAG": EXEMPT_TAG},
}


def estate_targets(emu: Emulator) -> str:
    return (
        f"hq={emu.region}/{emu.project_id} eu={EU_REGION}/{EU_PROJECT} "
        f"finance={FINANCE_REGION}/{FINANCE_PROJECT}@{ESTATE_ACCOUNT}/{ESTATE_AGENCY}"
    )


def function_urn(emu: Emulator, name: str = "sysprep-guard") -> str:
    """The URN the function derives for itself from devkit's Context (package default, version latest)."""
    return f"urn:fss:{emu.region}:{emu.project_id}:function:default:{name}:latest"


def stage_estate(emu: Emulator, run: Callable[[dict[str, Any], str], Any]) -> None:
    """The estate's other two projects, the member account and its agency, and the function itself, whose
    asynchronous invocations `run(event, request_id)` runs (in this process, one at a time)."""
    eu = Fleet.seeded(30, seed=11, per_kind=0.04)
    finance = Fleet.seeded(25, seed=12, per_kind=0.04)
    finance.add(Sysprep(version="2.0"), computer_name="fin-kiosk-01", tags={EXEMPT_TAG: "until=2027-03-31"})
    emu.add_project(EU_PROJECT, EU_REGION, eu)
    emu.add_account(ESTATE_ACCOUNT)
    emu.add_project(FINANCE_PROJECT, FINANCE_REGION, finance, account=ESTATE_ACCOUNT)
    emu.add_agency(ESTATE_ACCOUNT, ESTATE_AGENCY)
    emu.add_function(function_urn(emu), run)
