"""The places a sweep covers (TARGETS): regions and projects, some in member accounts reached through an agency.

TARGETS is one of:
- entries separated by commas, semicolons or white space, each `[name=]region/project_id[@account/agency]`, e.g.
  `finance=cn-north-4/0a1b...@acme-finance/sysprep-guard-audit` (account: the member account's name, or its
  domain id, 32 hexadecimal characters);
- a JSON list of {"region", "project_id", "account"?, "agency"?, "name"?};
- `obs://bucket/key`: an object holding either form, for an estate larger than FunctionGraph's 4 KB of user data.
A target is named in events by its key, `region/project_id` (project ids are unique across accounts).
"""

# No `from __future__ import annotations`: Target is built at every cold start (settings imports this module), and
# with it pydantic would evaluate each field's annotation from its text.

import json
import re
import unicodedata
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ESTATE = "estate"  # the `target` attribute of the dispatch's own message: no target may take the name
MAX_TARGETS = 500  # a dispatch is one asynchronous call each: past this, a typo (or a loop) is likelier than an estate

_ENTRY = re.compile(
    r"(?:(?P<name>[A-Za-z0-9_.-]{1,64})=)?(?P<region>[a-z]{2,}(?:-[a-z0-9]+)+)/(?P<project_id>[0-9A-Za-z]{8,64})"
    r"(?:@(?P<account>[^/\s,;@]{1,64})/(?P<agency>[^/\s,;@]{1,64}))?"
)
_SEPARATORS = re.compile(r"[\s,;]+")
_DOMAIN_ID = re.compile(r"[0-9a-f]{32}")


class Target(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str = Field(pattern=r"^[a-z]{2,}(-[a-z0-9]+)+$")
    project_id: str = Field(pattern=r"^[0-9A-Za-z]{8,64}$")
    # A member account (its name, or its domain id), reached by assuming `agency` there; None: the function's own.
    account: str | None = Field(default=None, min_length=1, max_length=64)
    agency: str | None = Field(default=None, min_length=1, max_length=64)
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    @field_validator("name")
    @classmethod
    def _not_estate(cls, value: str | None) -> str | None:
        if value is not None and value.lower() == ESTATE:
            raise ValueError(f"{ESTATE!r} names the dispatch's own message (its target attribute): choose another")
        return value

    @field_validator("account", "agency")
    @classmethod
    def _plain(cls, value: str | None) -> str | None:
        # IAM documents only the length (CreateAgency: at most 64 characters). Whatever the form, these reach
        # subjects and message attributes: no white space, control or format character, nor the compact form's
        # separators.
        if value is not None and any(
            c.isspace() or c in "/@,;" or unicodedata.category(c) in ("Cc", "Cf") for c in value
        ):
            raise ValueError("may not hold white space, control characters, or any of / @ , ;")
        return value

    @model_validator(mode="after")
    def _both(self) -> "Target":
        if (self.account is None) != (self.agency is None):
            raise ValueError("a member account needs its agency, and an agency its account: give both or neither")
        return self

    @property
    def key(self) -> str:
        return f"{self.region}/{self.project_id}"

    @property
    def label(self) -> str:
        """How people see it: its name, or its key."""
        return self.name or self.key

    @property
    def domain_is_id(self) -> bool:
        return self.account is not None and _DOMAIN_ID.fullmatch(self.account) is not None


def parse_targets(text: str) -> tuple[Target, ...]:
    """TARGETS' value (or its OBS object's text) as targets; ValueError saying what is wrong with which entry."""
    text = text.strip()
    if text.startswith("["):
        try:
            rows = json.loads(text)
        except RecursionError:
            raise ValueError("not valid JSON (nested too deeply)") from None
        except ValueError as exc:
            why = f"{exc.msg} at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else "unreadable"
            raise ValueError(f"not valid JSON ({why})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError('a JSON list of objects {"region", "project_id", "account"?, "agency"?, "name"?}')
        targets = [_target(row, f"entry {n}") for n, row in enumerate(rows, start=1)]
    else:
        targets = []
        for entry in (e for e in _SEPARATORS.split(text) if e):
            match = _ENTRY.fullmatch(entry)
            if match is None:
                raise ValueError(
                    f"entry {entry[:80]!r} is not [name=]region/project_id[@account/agency], e.g. "
                    "cn-north-4/0a1b2c3d4e5f67890a1b2c3d4e5f6789@acme-finance/sysprep-audit"
                )
            targets.append(_target({k: v for k, v in match.groupdict().items() if v is not None}, repr(entry)))
    if not targets:
        raise ValueError("no target given")
    if len(targets) > MAX_TARGETS:
        raise ValueError(f"{len(targets):,} targets, more than {MAX_TARGETS}")
    # A project belongs to one region, and its history is kept by its id: one id twice (in any region, in any case)
    # is a mistake.
    ids = Counter(t.project_id.lower() for t in targets)
    twice = sorted(k for k, n in ids.items() if n > 1)
    if twice:
        raise ValueError(f"a project given twice: {', '.join(twice[:5])}")
    names = [t.name for t in targets if t.name]
    if len(names) != len(set(names)):
        raise ValueError("two targets with the same name")
    return tuple(targets)


def _target(row: dict[str, object], where: str) -> Target:
    try:
        return Target.model_validate(row)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "entry"
        raise ValueError(f"{where}: {field}: {first['msg']}") from None


def find(targets: tuple[Target, ...], key: str) -> Target | None:
    """The configured target an event names by key (or by name), or None: never one made up from the event."""
    return next((t for t in targets if key in (t.key, t.name)), None)
