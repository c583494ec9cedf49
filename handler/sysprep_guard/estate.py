"""The estate (TARGETS): which places a sweep covers, how each is reached, and sweeping them one after another.

Each target's run is an ordinary run of one project (orchestrator.run_place), with its own report and history. A
target in another region is reached at that region's Workspace endpoint; one in a member account with temporary
keys from the agency it gave (agency.py), asked for at the start of its run and never kept. Everything else (SMN,
OBS, Cloud Eye, IAM, FunctionGraph) is the function's own, in its own region and project, with its own keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .agency import assume
from .client import SignedClient
from .errors import ApiError, ConfigError, DeliveryError, EventError, GuardError
from .events import Invocation
from .exemptions import Rules, parse_ids
from .logs import log
from .settings import ObsObject
from .targets import Target, find, parse_targets
from .timing import Deadline
from .workspace import Workspace

if TYPE_CHECKING:
    from .orchestrator import Run, Services

OBJECT_SECONDS = 5.0  # reading TARGETS' or EXEMPT_DESKTOP_IDS' OBS object


class TargetResult(BaseModel):
    """One target's part of an estate sweep, as the dispatching (or sweeping) invocation returns it."""

    target: str  # its key, region/project_id
    name: str | None = None
    account: str | None = None
    request_id: str | None = None  # fanned out: the asynchronous invocation's
    error: str | None = None  # fanned out: why it could not be started; in turn: why its run failed
    checked: int | None = None  # in turn: what its run found
    non_compliant: int | None = None
    unchecked: int | None = None
    exempt: int | None = None
    incomplete: bool | None = None
    published: int | None = None


class EstateSummary(BaseModel):
    """What a sweep of several targets returns: each target's part; each has its own report."""

    trigger: str
    mode: str  # "fan_out" (one asynchronous invocation each) or "in_turn" (one after another, here)
    targets: list[TargetResult]
    published: list[str] = []  # the dispatch's own notification, when some targets could not be started

    def returned(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def targets(services: Services, deadline: Deadline) -> tuple[Target, ...]:
    """TARGETS, read from its OBS object when it names one. An unreadable or malformed object fails the sweep:
    without its targets it cannot know what to check."""
    configured = services.settings.targets
    if not isinstance(configured, ObsObject):
        return configured
    try:
        return parse_targets(read_object(services, configured, deadline))
    except ApiError as exc:
        raise ConfigError(f"configuration TARGETS={configured}: the object cannot be read: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"configuration TARGETS={configured}: {exc}. Correct the object") from None


def configured(targets: tuple[Target, ...], name: str, home: Target) -> Target:
    """The target an event names, if TARGETS has it (without TARGETS, only the function's own project)."""
    target = find(targets, name) if targets else (home if name == home.key else None)
    if target is None:
        raise EventError(
            f"target {name[:200]!r} is not one of TARGETS: the function checks only the places it is configured for"
        )
    return target


def workspace_for(services: Services, target: Target, deadline: Deadline) -> Workspace:
    """The Workspace adapter for the target's project and region, signed with keys that reach it."""
    settings = services.settings
    if target.key == settings.home.key and target.account is None:
        return services.workspace
    workspace = services.places.get(target.key)
    if workspace is None:
        client = SignedClient(target.project_id, clock=services.clock, max_concurrency=settings.max_concurrency)
        endpoint = settings.endpoint("workspace", target.region)
        workspace = Workspace(client, endpoint, target.project_id, keep=services.workspace.keep)
        services.places[target.key] = workspace
    credentials = services.client.credentials
    if target.account is not None:
        credentials = assume(services.client, settings.endpoint("iam"), target, keep=services.workspace.keep)
    assert credentials is not None
    workspace.client.begin(credentials, deadline)
    return workspace


def exemption_rules(services: Services, deadline: Deadline, run: Run) -> Rules:
    """EXEMPT_TAG and EXEMPT_DESKTOP_IDS. An id list in an OBS object that cannot be read exempts no id, and the
    report says so: exemptions are not guessed."""
    settings = services.settings
    key, value = settings.exempt_tag or (None, None)
    ids = settings.exempt_desktop_ids
    if isinstance(ids, ObsObject):
        try:
            ids = parse_ids(read_object(services, ids, deadline))
        except (ApiError, ValueError) as exc:
            run.fail(f"EXEMPT_DESKTOP_IDS={settings.exempt_desktop_ids}: {exc}; no desktop is exempt by id", "exempt")
            ids = {}
    return Rules(tag_key=key, tag_value=value, ids=ids or None)


def read_object(services: Services, where: ObsObject, deadline: Deadline) -> str:
    from .obs_store import ObsStore  # the OBS SDK: only when a setting names an object

    credentials = services.client.credentials
    assert credentials is not None
    seconds = min(OBJECT_SECONDS, max(1.0, deadline.left() / 4))
    store = ObsStore(services.settings.endpoint("obs"), where.bucket, credentials, seconds=seconds)
    return store.get(where.key).decode("utf-8", errors="replace")


def one_after_another(
    invocation: Invocation, services: Services, deadline: Deadline, targets: tuple[Target, ...]
) -> EstateSummary:
    """Each target's run in turn, here (FAN_OUT=false). One target's failure stops neither the others nor their
    reports; an undelivered report fails the invocation at the end, so that the platform retries it."""
    from .orchestrator import run_place

    results, undelivered = [], []
    for target in targets:
        result = TargetResult(target=target.key, name=target.name, account=target.account)
        try:
            summary = run_place(invocation, services, deadline, target)
        except DeliveryError as exc:
            result.error = str(exc)
            undelivered.append(target.label)
        except GuardError as exc:  # this target's, not the others'
            log.error("a target's run failed", target=target.label, error=str(exc))
            result.error = str(exc)
        else:
            result.checked, result.non_compliant = summary.checked, summary.counts.non_compliant
            result.unchecked, result.exempt = summary.counts.unchecked, summary.counts.exempt
            result.incomplete, result.published = summary.incomplete, len(summary.published)
        results.append(result)
    if undelivered:
        raise DeliveryError(
            f"the reports of {len(undelivered)} of {len(targets)} targets were not delivered "
            f"({', '.join(undelivered[:10])}): the invocation fails so that the platform retries it"
        )
    return EstateSummary(trigger=invocation.trigger, mode="in_turn", targets=results)
