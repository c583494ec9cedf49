"""The IAM action each call of the function needs: docs/iam-policy.json grants exactly these (a test checks it).

Sources: the @IamAuthMeta abacAction of CheckSysprepInfo (API Explorer definitions); the "Authorization
Information" of the ListDesktops, ShowJob and PublishMessage API pages; Workspace's permissions table for
ListDesktopsDetail (its definition carries no action).
"""

from __future__ import annotations

ACTIONS = {
    "workspace ListDesktops": "workspace:desktops:list",
    "workspace ListDesktopsDetail": "workspace:desktops:listDetail",
    "workspace CheckSysprepInfo": "workspace:desktops:getSysPrepInfo",
    "workspace ShowJob": "workspace:jobs:get",
    "smn PublishMessage": "smn:topic:publish",
    # With METRICS=true (CreateMetricData's page), and with STATE_BUCKET (OBS's object and bucket actions).
    "ces CreateMetricData": "ces:metricData:create",
    "obs PutObject": "obs:object:PutObject",
    "obs GetObject": "obs:object:GetObject",
    "obs ListObjects": "obs:bucket:ListBucket",
    # With TARGETS: assuming a member account's agency (IAM's agency policy definition, CreateAgencyCustomPolicy:
    # its only action), and invoking this function for each target (FunctionGraph's action for asynchronous
    # invocation; see docs/iam-policy-fanout.json).
    "iam CreateTemporaryAccessKeyByAgency": "iam:agencies:assume",
    "functiongraph AsyncInvokeFunction": "functiongraph:function:invokeAsync",
}


def needed_by(call: str) -> str:
    """What to grant for a call the cloud refused, as an operator reads it."""
    action = ACTIONS.get(call)
    return f"that the agency's policy grants {action}" if action else "the agency's permissions"
