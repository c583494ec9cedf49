"""The report: what an invocation found, as the summary the handler returns and notifications render."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

from .policy import Policy, format_version

NOT_READY = "not_ready"  # Workspace was still creating or changing it (a task in progress): neither compliant nor not
NOT_FOUND = "not_found"  # named by an event, but Workspace lists no such desktop (deleted, or never made)
DEADLINE = "deadline"  # the invocation ran out of time before this desktop was checked


class Finding(BaseModel):
    desktop_id: str
    reasons: list[str]
    sysprep_version: str | None = None
    computer_name: str | None = None
    user_name: str | None = None


class Unchecked(BaseModel):
    desktop_id: str
    reason: str


class PolicyView(BaseModel):
    """The policy applied, as readers see it: why a desktop failed."""

    description: str
    min_sysprep_version: str | None
    require_hibernate: bool
    require_update_route: bool

    @classmethod
    def of(cls, policy: Policy) -> PolicyView:
        return cls(
            description=policy.describe(),
            min_sysprep_version=format_version(policy.min_version) if policy.min_version else None,
            require_hibernate=policy.require_hibernate,
            require_update_route=policy.require_update_route,
        )


class Summary(BaseModel):
    trigger: str
    region: str
    project_id: str
    run_time: str  # when the invocation started, UTC, ISO 8601
    policy: PolicyView
    dry_run: bool
    skipped: str | None = None
    checked: int = 0
    compliant: int = 0
    non_compliant: list[Finding] = []
    unchecked: list[Unchecked] = []
    errors: list[str] = []  # work that failed as a whole (a listing, a job), beside per-desktop reasons
    incomplete: bool = False
    unlisted: int | None = 0  # desktops a sweep never got to list (None: unknown, the listing failed at once)
    published: list[str] = []
    fingerprint: str | None = None  # the same findings give the same fingerprint, across platform retries

    @property
    def needs_notice(self) -> bool:
        return bool(self.non_compliant or self.unchecked or self.errors)

    @property
    def total(self) -> int:
        """Desktops this invocation set out to check and could name."""
        return self.checked + len(self.unchecked)

    def by_reason(self) -> dict[str, int]:
        """Counts per reason, unchecked ones by the head of their reason (code or kind), most frequent first."""
        counts: dict[str, int] = {}
        for finding in self.non_compliant:
            for reason in finding.reasons:
                counts[reason] = counts.get(reason, 0) + 1
        for unchecked in self.unchecked:
            key = "unchecked: " + unchecked.reason.split(":", 1)[0]
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def fingerprint(summary: Summary) -> str:
    """A digest of what was found (not of when, nor of error texts), so receivers can drop repeats."""
    digest = hashlib.sha256(f"{summary.project_id}\n{summary.region}\n".encode())
    for line in sorted(
        [f"{f.desktop_id} {','.join(f.reasons)}" for f in summary.non_compliant]
        + [f"{u.desktop_id} unchecked" for u in summary.unchecked]
    ):
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()[:20]
