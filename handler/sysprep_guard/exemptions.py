"""Exemptions: desktops people have decided to accept, by tag (EXEMPT_TAG) or by id (EXEMPT_DESKTOP_IDS).

Pure functions, no I/O. An exempt desktop is not checked: it is counted and listed apart, with why, never as
non-compliant and never dropped. An exemption may end: a tag value or an id entry carrying a date
(`until=2027-03-31`, `until:2027-03-31`, or the bare date) holds through that day (UTC); after it the desktop is
judged again. A date that cannot be read (`until=2025-1-31`, `until=never`, `31/03/2025`) exempts nothing: a false
exemption would hide a finding for good.
"""

# No `from __future__ import annotations`: Exempt is built at every cold start (settings imports this module), and
# with it pydantic would evaluate each field's annotation from its text.

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import NamedTuple

from pydantic import BaseModel

from .models import is_desktop_id

SOON = timedelta(days=7)  # an exemption ending this soon is mentioned in the report
_DATE = re.compile(r"(?:until\s*[=:]?\s*)?(\d{4}-\d{2}-\d{2})", re.IGNORECASE)
_ID_ENTRIES = re.compile(r"[,;]+")
# A tag value that tries to give an end (the word, or something shaped like a date in another form) without a date
# read as YYYY-MM-DD: "until=2025-1-31", "until=never", "31/03/2025", "20250131".
_MEANT_A_DATE = re.compile(r"until|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{8}", re.IGNORECASE)


class Exempt(BaseModel):
    desktop_id: str
    why: str  # "tag sysprep-exempt=until=2027-03-31", or "EXEMPT_DESKTOP_IDS"
    until: str | None = None  # the last day of the exemption (ISO date); None: no end
    computer_name: str | None = None


class Rules(NamedTuple):
    """EXEMPT_TAG (a key, or key=value) and EXEMPT_DESKTOP_IDS (id -> its last day, or None)."""

    tag_key: str | None = None
    tag_value: str | None = None
    ids: Mapping[str, date | None] | None = None

    @property
    def any(self) -> bool:
        return bool(self.tag_key or self.ids)


def parse_tag(text: str) -> tuple[str, str | None]:
    """EXEMPT_TAG: `key` or `key=value` (a tag key holds no "="; the value may)."""
    key, sep, value = text.strip().partition("=")
    key, value = key.strip(), value.strip()
    if not key or len(key) > 128:
        raise ValueError("expected a tag key (1 to 128 characters), or key=value")
    if sep and not value:
        raise ValueError("key= with no value: give key alone to exempt any value")
    return key, (value or None)


def parse_ids(text: str) -> dict[str, date | None]:
    """EXEMPT_DESKTOP_IDS: desktop ids separated by commas, semicolons or lines, each optionally followed by
    `until=YYYY-MM-DD`; `#` starts a comment (for an OBS object's lines)."""
    ids: dict[str, date | None] = {}
    entries = (e.strip() for line in text.splitlines() for e in _ID_ENTRIES.split(line.split("#", 1)[0]))
    for entry in entries:
        if not entry:
            continue
        desktop_id, _, rest = entry.partition(" ")
        if not is_desktop_id(desktop_id):
            raise ValueError(f"{desktop_id[:60]!r} is not a desktop id (a UUID)")
        until = None
        if rest.strip():
            until = _until(rest)
            if until is None:
                raise ValueError(f"after {desktop_id}: expected until=YYYY-MM-DD, got {rest.strip()[:40]!r}")
        ids[desktop_id.lower()] = until
    return ids


def exemption(desktop_id: str, tags: Mapping[str, str], rules: Rules, today: date) -> tuple[Exempt | None, str | None]:
    """(the exemption that holds today, or None; why an exemption found does not hold, or None)."""
    if rules.ids is not None and desktop_id.lower() in rules.ids:
        until = rules.ids[desktop_id.lower()]
        if until is None or until >= today:
            why = "EXEMPT_DESKTOP_IDS"
            return Exempt(desktop_id=desktop_id, why=why, until=_iso(until)), None
        return None, f"EXEMPT_DESKTOP_IDS ended {until.isoformat()}"
    if rules.tag_key is None:
        return None, None
    value = _tag(tags, rules.tag_key)
    if value is None:
        return None, None
    why = f"tag {rules.tag_key}" + (f"={value}" if value else "")
    dates = _DATE.findall(value)
    rest = _DATE.sub("", value).strip(" ;,_-").lower()
    # Checked before the value: whatever the value, an end that cannot be read is a mistake someone should hear of.
    if len(dates) > 1 or _MEANT_A_DATE.search(rest):
        return None, f"{why}: its date cannot be read (expected one until=YYYY-MM-DD)"
    if rules.tag_value is not None and rest != rules.tag_value.lower():
        return None, None
    if not dates:
        return Exempt(desktop_id=desktop_id, why=why), None
    until = _date(dates[0])
    if until is None:
        return None, f"{why}: its date cannot be read"
    if until < today:
        return None, f"{why}: ended {until.isoformat()}"
    return Exempt(desktop_id=desktop_id, why=why, until=until.isoformat()), None


def ending_soon(exempt: Exempt, today: date) -> bool:
    return exempt.until is not None and date.fromisoformat(exempt.until) - today <= SOON


def _tag(tags: Mapping[str, str], key: str) -> str | None:
    """The tag's value, the key matched without regard to case (Workspace's console shows keys as typed)."""
    wanted = key.lower()
    return next((v for k, v in tags.items() if k.lower() == wanted), None)


def _until(text: str) -> date | None:
    match = _DATE.fullmatch(text.strip())
    return _date(match.group(1)) if match else None


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
