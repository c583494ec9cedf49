"""The compliance policy: pure functions over pydantic models, no I/O."""

from __future__ import annotations

import re
from typing import NamedTuple

from .models import SysprepInfo

Version = tuple[int, ...]

_VERSION = re.compile(r"^[vV]?(\d{1,9}(?:\.\d{1,9}){0,7})$")

# Reasons, one per failed rule; the notification and the summary use these names.
NO_SYSPREP_INFO = "no_sysprep_info"
VERSION_MISSING = "sysprep_version_missing"
VERSION_UNREADABLE = "sysprep_version_unreadable"
VERSION_BELOW_MINIMUM = "sysprep_version_below_minimum"
HIBERNATE_NOT_SUPPORTED = "hibernate_not_supported"
UPDATE_ROUTE_NOT_SUPPORTED = "update_route_not_supported"
REASONS = (  # in the order they are reported
    NO_SYSPREP_INFO,
    VERSION_MISSING,
    VERSION_UNREADABLE,
    VERSION_BELOW_MINIMUM,
    HIBERNATE_NOT_SUPPORTED,
    UPDATE_ROUTE_NOT_SUPPORTED,
)


def parse_version(text: str) -> Version | None:
    """`3.0.10` -> (3, 0, 10); None when the text is not a dotted numeric version."""
    match = _VERSION.match(text.strip())
    if not match:
        return None
    parts = [int(p) for p in match.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:  # 3.0 and 3.0.0 are the same version
        parts.pop()
    return tuple(parts)


def format_version(version: Version) -> str:
    return ".".join(str(p) for p in (version if len(version) > 1 else (*version, 0)))


class Policy(NamedTuple):
    """Made from the validated settings (Settings.policy), never from outside input."""

    min_version: Version | None = None
    require_hibernate: bool = False
    require_update_route: bool = False

    def describe(self) -> str:
        rules = []
        if self.min_version is not None:
            rules.append(f"Sysprep version >= {format_version(self.min_version)}")
        if self.require_hibernate:
            rules.append("hibernation supported")
        if self.require_update_route:
            rules.append("route update supported")
        return ", ".join(rules) if rules else "Sysprep info present and readable"


def judge(info: SysprepInfo | None, policy: Policy) -> list[str]:
    """The reasons this desktop fails the policy; an empty list means compliant.

    Missing or unreadable data is a failure of its own: nothing passes by default.
    """
    if info is None:
        return [NO_SYSPREP_INFO]
    reasons = []
    if info.sysprep_version is None or not info.sysprep_version.strip():
        reasons.append(VERSION_MISSING)
    else:
        version = parse_version(info.sysprep_version)
        if version is None:
            reasons.append(VERSION_UNREADABLE)
        elif policy.min_version is not None and version < policy.min_version:
            reasons.append(VERSION_BELOW_MINIMUM)
    # `is not True`: an absent capability flag is not evidence of support.
    if policy.require_hibernate and info.support_hibernate is not True:
        reasons.append(HIBERNATE_NOT_SUPPORTED)
    if policy.require_update_route and info.support_update_route is not True:
        reasons.append(UPDATE_ROUTE_NOT_SUPPORTED)
    return reasons
