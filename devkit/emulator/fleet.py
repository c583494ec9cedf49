"""The emulated project's desktops: a compact seeded fleet, plus edits and additions."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True, slots=True)
class Sysprep:
    """A desktop's answer in CheckSysprepInfo."""

    version: str | None = "3.1.2"
    hibernate: bool | None = True
    update_route: bool | None = True


# task_status values from ListDesktopsDetail's definition (DesktopDetailInfo.task_status): non-empty while
# Workspace works on the desktop.
CREATING = "spawning"
REBUILDING = "rebuilding"


@dataclass(frozen=True, slots=True)
class Desktop:
    desktop_id: str
    computer_name: str
    user_name: str
    status: str | None = "ACTIVE"  # ACTIVE, SHUTOFF, ERROR, HIBERNATED; None: not reported (being created)
    task_status: str | None = None  # what Workspace is doing to it (spawning, rebuilding, ...), None when idle
    sysprep: Sysprep | None = Sysprep()  # None: Workspace has no Sysprep info and leaves it out
    created: str = "2026-01-01T00:00:00.000Z"
    kind: str = "custom"  # what the seeded fleet made it (see KINDS); "custom" once added or edited
    desktop_type: str = "DEDICATED"
    enterprise_project_id: str = "0"
    tags: tuple[tuple[str, str], ...] = ()  # (key, value) pairs, keys unique; see tag_pairs()

    def record(self) -> dict[str, Any]:
        """As listed by ListDesktops (SimpleDesktopInfo) and ListDesktopsDetail (DesktopDetailInfo): the fields
        both share. Fields with no value are left out; `tags` is a list of Tag {key, value} (both models), empty for a
        desktop with none (no source says whether Workspace then answers [] or leaves it out: [] is what the model
        allows either way)."""
        record: dict[str, Any] = {
            "desktop_id": self.desktop_id,
            "computer_name": self.computer_name,
            "user_name": self.user_name,
            "status": self.status,
            "task_status": self.task_status,
            "created": self.created,
            "desktop_type": self.desktop_type,
            "enterprise_project_id": self.enterprise_project_id,
            "tags": [{"key": k, "value": v} for k, v in self.tags],
        }
        return {k: v for k, v in record.items() if v is not None}

    def sysprep_record(self) -> dict[str, Any] | None:
        """As answered by CheckSysprepInfo (None: left out of the answer)."""
        if self.sysprep is None:
            return None
        return {
            "desktop_id": self.desktop_id,
            "sysprep_version": self.sysprep.version,
            "support_hibernate": self.sysprep.hibernate,
            "support_update_route": self.sysprep.update_route,
        }


COMPLIANT = "compliant"
BUILDING = "building"
# What a seeded desktop can be: (status, task_status, Sysprep info). Every kind but the first two fails a policy of
# "version >= 3.0.10, hibernation and route update supported" in exactly one way.
KINDS: dict[str, tuple[str | None, str | None, Sysprep | None]] = {
    COMPLIANT: ("ACTIVE", None, Sysprep()),
    BUILDING: (None, CREATING, None),  # being created: neither compliant nor not
    "version_below_minimum": ("ACTIVE", None, Sysprep(version="3.0.9")),  # below 3.0.10 numerically, above as text
    "version_far_below_minimum": ("ACTIVE", None, Sysprep(version="2.5")),
    "no_hibernate": ("ACTIVE", None, Sysprep(hibernate=False)),
    "no_update_route": ("SHUTOFF", None, Sysprep(update_route=False)),  # a stopped desktop is still checked
    "version_missing": ("ACTIVE", None, Sysprep(version=None)),
    "version_unreadable": ("ACTIVE", None, Sysprep(version="beta")),
    "no_sysprep_info": ("ACTIVE", None, None),
}
_KIND_NAMES = tuple(KINDS)
# Compliant desktops take turns at these versions: the boundary itself, and one that sorts wrong as text.
_COMPLIANT_INFOS = tuple(Sysprep(version=v) for v in ("3.1.2", "3.0.10", "3.10"))
_CREATED_BASE = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp())  # seeded desktops: a minute apart

# Tag (huaweicloudsdkworkspace.v2.Tag; ListDesktops' and ListDesktopsDetail's definitions): key required, at most 128
# characters; value at most 43, default "". The character rules differ between sources (notes/issue13-facts.md §3):
# the emulator holds tags to the lengths only.
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 43

Tags = Sequence[tuple[str, str]] | Mapping[str, str]


def tag_pairs(tags: Tags | None) -> tuple[tuple[str, str], ...]:
    """Tags as a desktop keeps them: (key, value) pairs in the order given, each key once, within Tag's limits."""
    pairs = tuple((tags or {}).items()) if isinstance(tags, Mapping) or tags is None else tuple(tags)
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a desktop has each tag key once, got {keys}")
    for key, value in pairs:
        if not isinstance(key, str) or not 1 <= len(key) <= TAG_KEY_MAX:
            raise ValueError(f"a tag key is 1 to {TAG_KEY_MAX} characters, got {key!r}")
        if not isinstance(value, str) or len(value) > TAG_VALUE_MAX:
            raise ValueError(f"a tag value is a string of at most {TAG_VALUE_MAX} characters, got {value!r}")
    return pairs


def matches_tags(desktop: Desktop, wanted: Sequence[tuple[str, str | None]]) -> bool:
    """Whether the desktop carries every wanted (key, value) pair (value None: the key with any value)."""
    have = dict(desktop.tags)
    return all(key in have and (value is None or have[key] == value) for key, value in wanted)


class Fleet:
    """The project's desktops: seeded ones derived from their index (one byte each), plus edits and additions.

    Seeded desktop ids are UUIDs whose first 24 characters come from the seed and whose last 12 are the
    index in hex, so a fleet of 100,000 costs about 100 KB and an id is resolved without a table.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        digest = hashlib.sha256(f"sysprep-guard-emulator:{seed}".encode()).hexdigest()
        variant = "89ab"[int(digest[15], 16) % 4]
        self._prefix = f"{digest[:8]}-{digest[8:12]}-4{digest[12:15]}-{variant}{digest[16:19]}-"
        self._kinds = bytearray()  # one index into _KIND_NAMES per seeded desktop
        self._edited: dict[int, Desktop] = {}
        self._added: list[Desktop] = []
        self._added_at: dict[str, int] = {}
        self._rng = random.Random(f"added:{seed}")  # ids of added desktops, reproducible too

    @classmethod
    def seeded(cls, n: int, seed: int = 0, per_kind: float = 0.02) -> Fleet:
        """`n` desktops: `per_kind` of them (at least one, fleet size permitting, unless 0) of each non-compliant
        kind and of desktops being created, at positions drawn from `seed`; the rest compliant."""
        if n < 0:
            raise ValueError("a fleet cannot have fewer than 0 desktops")
        fleet = cls(seed)
        fleet._kinds = bytearray(n)  # all 0: compliant
        each = max(1, round(n * per_kind)) if per_kind > 0 else 0  # 0: all compliant
        codes = [code for code in range(1, len(_KIND_NAMES)) for _ in range(each)][:n]
        rng = random.Random(seed)
        for position, code in zip(rng.sample(range(n), len(codes)), codes, strict=True):
            fleet._kinds[position] = code
        return fleet

    def __len__(self) -> int:
        return len(self._kinds) + len(self._added)

    def __iter__(self) -> Iterator[Desktop]:
        return (self.at(i) for i in range(len(self)))

    def __contains__(self, desktop_id: object) -> bool:
        return isinstance(desktop_id, str) and self._position(desktop_id) is not None

    def at(self, position: int) -> Desktop:
        """The desktop at this position of the listing."""
        seeded = len(self._kinds)
        if 0 <= position < seeded:
            return self._edited.get(position) or self._seeded(position)
        if seeded <= position < len(self):
            return self._added[position - seeded]
        raise IndexError(position)

    def page(self, offset: int, limit: int) -> list[Desktop]:
        return [self.at(i) for i in range(offset, min(offset + limit, len(self)))]

    def get(self, desktop_id: str) -> Desktop | None:
        position = self._position(desktop_id)
        return None if position is None else self.at(position)

    def __getitem__(self, desktop_id: str) -> Desktop:
        desktop = self.get(desktop_id)
        if desktop is None:
            raise KeyError(desktop_id)
        return desktop

    def ids(self, kind: str | None = None) -> list[str]:
        """Desktop ids in listing order, optionally only those of one kind (without building the desktops)."""
        seeded = len(self._kinds)
        ids = [f"{self._prefix}{i:012x}" for i in range(seeded) if kind is None or self._seeded_kind(i) == kind]
        return ids + [d.desktop_id for d in self._added if kind is None or d.kind == kind]

    def kind_counts(self) -> Counter[str]:
        counts = Counter({name: self._kinds.count(code) for code, name in enumerate(_KIND_NAMES)})
        for position, desktop in self._edited.items():
            counts[_KIND_NAMES[self._kinds[position]]] -= 1
            counts[desktop.kind] += 1
        counts.update(d.kind for d in self._added)
        return +counts  # without the kinds it has none of

    def add(
        self,
        sysprep: Sysprep | None = Sysprep(),  # frozen, so sharing the default is safe
        *,
        status: str | None = "ACTIVE",
        task_status: str | None = None,
        desktop_id: str | None = None,
        computer_name: str | None = None,
        user_name: str | None = None,
        tags: Tags | None = None,
        kind: str = "custom",
    ) -> str:
        """Add a desktop after the seeded ones and return its id (random but reproducible unless given); `tags` as
        (key, value) pairs or a mapping."""
        desktop_id = (desktop_id or str(uuid.UUID(int=self._rng.getrandbits(128), version=4))).lower()
        if desktop_id in self:
            raise ValueError(f"desktop {desktop_id} is already in the fleet")
        number = len(self._added) + 1
        self._added_at[desktop_id] = len(self._added)
        self._added.append(
            Desktop(
                desktop_id=desktop_id,
                computer_name=computer_name or f"added-{number:04d}",
                user_name=user_name or f"added{number:04d}",
                status=status,
                task_status=task_status,
                sysprep=sysprep,
                tags=tag_pairs(tags),
                kind=kind,
            )
        )
        return desktop_id

    def remove(self, desktop_id: str) -> None:
        """Delete an added desktop (seeded ones are derived from their position and stay)."""
        position = self._added_at.get(desktop_id.lower())
        if position is None:
            raise KeyError(f"{desktop_id} is not an added desktop: only those can be removed")
        del self._added[position]
        self._added_at = {d.desktop_id: i for i, d in enumerate(self._added)}

    def update(self, desktop_id: str, /, **changes: Any) -> Desktop:
        """Change a desktop's fields (`sysprep=Sysprep(...)`, `status=...`, `tags=...`); it becomes kind "custom",
        unless only its tags change (they have no bearing on its compliance)."""
        position = self._position(desktop_id)
        if position is None:
            raise KeyError(desktop_id)
        if "desktop_id" in changes:
            raise ValueError("a desktop's id cannot change")
        if "tags" in changes:
            changes["tags"] = tag_pairs(changes["tags"])
        if set(changes) - {"tags"}:
            changes.setdefault("kind", "custom")
        desktop = dataclasses.replace(self.at(position), **changes)
        if position < len(self._kinds):
            self._edited[position] = desktop
        else:
            self._added[position - len(self._kinds)] = desktop
        return desktop

    def tag_seeded(self, desktop_ids: Iterable[str], key: str, value: str = "") -> int:
        """Give these desktops (seeded or added) the tag key=value, replacing their value of that key; their kind
        stays. Only the desktops tagged cost memory, so tagging 1% of 100,000 stays cheap. Returns how many."""
        count = 0
        for desktop_id in desktop_ids:
            tags = dict(self[desktop_id].tags)
            tags[key] = value
            self.update(desktop_id, tags=tags)
            count += 1
        return count

    def tagged(self, wanted: Sequence[tuple[str, str | None]]) -> list[Desktop]:
        """The desktops carrying every wanted tag, in listing order (seeded ones never edited carry none)."""
        seeded = sorted(p for p, d in self._edited.items() if matches_tags(d, wanted))
        return [self.at(p) for p in seeded] + [d for d in self._added if matches_tags(d, wanted)]

    def _seeded_kind(self, i: int) -> str:
        edited = self._edited.get(i)
        return edited.kind if edited is not None else _KIND_NAMES[self._kinds[i]]

    def _seeded(self, i: int) -> Desktop:
        kind = _KIND_NAMES[self._kinds[i]]
        status, task_status, sysprep = KINDS[kind]
        if kind == COMPLIANT:
            sysprep = _COMPLIANT_INFOS[i % len(_COMPLIANT_INFOS)]
        return Desktop(
            desktop_id=f"{self._prefix}{i:012x}",
            computer_name=f"desk-{i + 1:06d}",
            user_name=f"user{i + 1:06d}",
            status=status,
            task_status=task_status,
            sysprep=sysprep,
            created=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(_CREATED_BASE + 60 * i)),
            kind=kind,
        )

    def _position(self, desktop_id: str) -> int | None:
        desktop_id = desktop_id.lower()
        if desktop_id.startswith(self._prefix):
            tail = desktop_id[len(self._prefix) :]
            if len(tail) == 12 and all(c in "0123456789abcdef" for c in tail):
                index = int(tail, 16)
                return index if index < len(self._kinds) else None
        added = self._added_at.get(desktop_id)
        return None if added is None else len(self._kinds) + added
