"""FunctionGraph entry point (`index.handler`): parse, build once per cold start, delegate, summarise."""

from __future__ import annotations

import os
import warnings
from typing import Any

# The function uses no pydantic plugin; without this, the first model built scans every installed
# distribution's entry points for plugins, a cost paid on each cold start.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
# The zip leaves out requests' character detection (LEFT_OUT in scripts/package says why), which requests supports,
# saying so in a warning at import: not a problem, so not a line in every cold start's log.
warnings.filterwarnings("ignore", "Unable to find acceptable character detection", module="requests")

from sysprep_guard.client import SignedClient, resolve_credentials
from sysprep_guard.errors import GuardError
from sysprep_guard.events import Skip, parse_event
from sysprep_guard.functiongraph import own_urn
from sysprep_guard.logs import bind_request_id, log
from sysprep_guard.orchestrator import (
    PUBLISH_RESERVE_SECONDS,
    RETURN_MARGIN_SECONDS,
    STATE_RESERVE_SECONDS,
    Origin,
    Services,
    execute,
)
from sysprep_guard.settings import load_settings
from sysprep_guard.smn import Smn
from sysprep_guard.timing import Clock, Deadline
from sysprep_guard.workspace import Workspace

_services: Services | None = None  # built on the first invocation of each instance, then reused


def handler(event: Any, context: Any) -> dict[str, Any]:
    bind_request_id(_ask(context, "getRequestID"))
    try:
        services = _build(context)
        invocation = parse_event(event)
        deadline = Deadline.after(services.clock, _time_left(context))
        if not isinstance(invocation.work, Skip):
            # Read on every invocation: the agency's temporary keys rotate under a warm instance.
            services.workspace.client.begin(resolve_credentials(context), deadline)
        settings = services.settings
        origin = Origin(_ask(context, "getRequestID"), own_urn(context, settings.region, settings.project_id))
        summary = execute(invocation, services, deadline, origin)
    except GuardError as exc:
        log.error(str(exc), kind=exc.kind)
        raise
    except Exception:  # a bug: one line of our own (scrubbed like every other) before the platform's traceback
        log.error("unexpected error; the invocation fails", exc_info=True)
        raise
    return summary.returned()


def _build(context: Any) -> Services:
    global _services
    if _services is None:
        settings = load_settings(lambda key: _ask(context, "getUserData", key) or os.environ.get(key))
        clock = Clock()
        client = SignedClient(settings.project_id, clock=clock, max_concurrency=settings.max_concurrency)
        # Workspace calls leave time to publish, and with a history to read and write it.
        keep = PUBLISH_RESERVE_SECONDS + (STATE_RESERVE_SECONDS if settings.state_bucket or settings.metrics else 0)
        _services = Services(
            settings=settings,
            workspace=Workspace(client, settings.workspace_endpoint, settings.project_id, keep=keep),
            smn=Smn(client, settings.smn_endpoint, settings.project_id, keep=RETURN_MARGIN_SECONDS),
            clock=clock,
        )
    return _services


def _ask(context: Any, method: str, *args: str) -> Any:
    fn = getattr(context, method, None)
    return fn(*args) if callable(fn) else None


def _time_left(context: Any) -> float:
    millis = _ask(context, "getRemainingTimeInMilliSeconds")
    if isinstance(millis, (int, float)) and not isinstance(millis, bool):
        return max(0.0, millis / 1000)  # 0 means no time left, not "unknown"
    return float(os.environ.get("RUNTIME_TIMEOUT") or 900)
