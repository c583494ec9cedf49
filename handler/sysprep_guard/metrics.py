"""Cloud Eye custom metrics (METRICS=true): each run's counts, for graphs and alarm rules.

CES CreateMetricData, `POST /V1.0/{project_id}/metric-data` (IAM `ces:metricData:create`): a list of data points,
each {metric: {namespace, metric_name, dimensions}, ttl, collect_time (ms), value, unit, type}. The namespace is
`service.item` (3 to 32 letters, digits and `_`, not starting SYS, AGT or SRE); the one dimension is the project.
A failure here never fails the run: it is logged, and the summary says so.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from .client import SignedClient
from .errors import ApiError
from .logs import log
from .report import Summary

NAMESPACE = "WorkspaceSysprep.compliance"
TTL_SECONDS = 604_800  # CES keeps a point at most 7 days; longer history is the run objects'
CALL = "ces CreateMetricData"


def points(summary: Summary, collect_time_ms: int) -> list[dict[str, object]]:
    """The data points of one run: checked, compliant, non_compliant, unchecked and incomplete (0 or 1)."""
    values = {
        "checked": summary.checked,
        "compliant": summary.compliant,
        "non_compliant": summary.counts.non_compliant,
        "unchecked": summary.counts.unchecked,
        "incomplete": int(summary.incomplete),
    }
    dimensions = [{"name": "project_id", "value": summary.project_id}]
    return [
        {
            "metric": {"namespace": NAMESPACE, "metric_name": name, "dimensions": dimensions},
            "ttl": TTL_SECONDS,
            "collect_time": collect_time_ms,
            "value": value,
            "unit": "count",
            "type": "int",
        }
        for name, value in values.items()
    ]


def send(client: SignedClient, endpoint: str, project_id: str, summary: Summary, keep: float) -> str:
    """Put the run's counts in Cloud Eye, in the function's project (`project_id`), dimensioned by the project
    the desktops are in; what happened, for the summary."""
    path = f"/V1.0/{quote(project_id, safe='')}/metric-data"
    try:
        client.call(CALL, "POST", endpoint, path, body=points(summary, int(time.time() * 1000)), keep=keep)
    except ApiError as exc:
        log.error("metrics not sent to Cloud Eye; the run goes on", error=str(exc))
        return f"not sent: {exc}"
    return "sent"
