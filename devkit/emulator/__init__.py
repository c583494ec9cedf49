"""A local stand-in for the Huawei Cloud endpoints the function calls, signature checks included.

One `ThreadingHTTPServer` on 127.0.0.1 serves every emulated service (one module each: `workspace`, `smn`, and on
request `ces`, `obs`, `iam` and `functiongraph`), so the function is configured with one endpoint, `emulator.url`,
for all of them, in every region: the project id in a path tells projects apart. `estate` keeps who owns what: the
central account (the default project, the keys in `Emulator.keys`), member accounts with their projects and agencies,
and the temporary keys IAM issued for them. Each
service sits behind its endpoint's checks (`http.Endpoint`): like the API gateway, the emulator refuses any
Workspace, SMN or CES request that is not signed SDK-HMAC-SHA256 with a key it knows (checked with
huaweicloudsdkcore's own signer), and any OBS request whose OBS signature does not match (recomputed with
esdk-obs-python's own signer). It enforces the documented limits, so that a request the emulator accepts is one
the cloud would accept. It answers as the cloud documents it; misbehaviour beyond its documented faults belongs to
the hostile test servers, not here.

    with Emulator(fleet=Fleet.seeded(500), buckets=["sysprep-state"], ces=True) as emu:
        emu.inject("sysprep", Fault.throttled())
        emu.inject("obs_put", obs_outage())
        emu.add_account("member-a")
        emu.add_project("0" * 31 + "1", "cn-north-4", Fleet.seeded(50, seed=1), account="member-a")
        emu.add_agency("member-a", "sysprep-guard-reader")  # trusting the central account
        emu.add_function(urn, lambda event, request_id: ...)  # AsyncInvokeFunction runs it in-process
        ...  # point the function at emu.url, sign with FAKE_AK / FAKE_SK / FAKE_TOKEN
        emu.wait_for_invocations()

`python -m devkit.emulator --port 8080 --desktops 50` runs it in the foreground until Ctrl-C.
Error codes that Huawei documents are used as documented (APIG.0101, APIG.0201, APIG.0301, APIG.0308,
SMN.0006, SMN.0021, SMN.0032, ces.0001, ces.0009, ces.0014, ces.0017, FSS.0400, FSS.0403, FSS.0406, FSS.0413,
FSS.0429, FSS.1051, IAM's Keystone-shaped errors, and OBS's codes); the WKS.* codes and SMN.0001 are the emulator's
own.
"""

from .ces import BODY_MAX_BYTES as CES_BODY_MAX_BYTES
from .ces import POINTS_MAX, MetricPoint
from .cli import banner, main
from .core import (
    ALWAYS_INJECTABLE,
    DEFAULT_PROJECT_ID,
    DEFAULT_REGION,
    DEFAULT_TOPIC_NAME,
    DROPPED,
    FAKE_AK,
    FAKE_SK,
    FAKE_TOKEN,
    Emulator,
    Exchange,
    Published,
    Route,
    topic_urn,
)
from .estate import DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Account, Agency, Issued, Project
from .faults import Fault
from .fleet import BUILDING, COMPLIANT, CREATING, KINDS, REBUILDING, TAG_KEY_MAX, TAG_VALUE_MAX, Desktop, Fleet, Sysprep
from .functiongraph import BODY_MAX_BYTES as ASYNC_BODY_MAX_BYTES
from .functiongraph import FunctionUrn, Invocation
from .functiongraph import throttled as fgs_throttled
from .http import GATEWAY, MAX_DATE_SKEW, MAX_REQUEST_BYTES, Endpoint
from .iam import outage as iam_outage
from .iam import refused as iam_refused
from .obs import LIST_MAX as OBS_LIST_MAX
from .obs import StoredObject
from .obs import outage as obs_outage
from .smn import ATTRIBUTES_MAX, MESSAGE_MAX_BYTES, SUBJECT_MAX_BYTES
from .workspace import DETAIL_IDS_MAX, LIST_MAX, SYSPREP_MAX, job_states

__all__ = [
    "ALWAYS_INJECTABLE",
    "ASYNC_BODY_MAX_BYTES",
    "ATTRIBUTES_MAX",
    "BUILDING",
    "CES_BODY_MAX_BYTES",
    "COMPLIANT",
    "CREATING",
    "DEFAULT_DOMAIN_ID",
    "DEFAULT_DOMAIN_NAME",
    "DEFAULT_PROJECT_ID",
    "DEFAULT_REGION",
    "DEFAULT_TOPIC_NAME",
    "DETAIL_IDS_MAX",
    "DROPPED",
    "FAKE_AK",
    "FAKE_SK",
    "FAKE_TOKEN",
    "GATEWAY",
    "KINDS",
    "LIST_MAX",
    "MAX_DATE_SKEW",
    "MAX_REQUEST_BYTES",
    "MESSAGE_MAX_BYTES",
    "OBS_LIST_MAX",
    "POINTS_MAX",
    "REBUILDING",
    "SUBJECT_MAX_BYTES",
    "SYSPREP_MAX",
    "TAG_KEY_MAX",
    "TAG_VALUE_MAX",
    "Account",
    "Agency",
    "Desktop",
    "Emulator",
    "Endpoint",
    "Exchange",
    "Fault",
    "Fleet",
    "FunctionUrn",
    "Invocation",
    "Issued",
    "MetricPoint",
    "Project",
    "Published",
    "Route",
    "StoredObject",
    "Sysprep",
    "banner",
    "fgs_throttled",
    "iam_outage",
    "iam_refused",
    "job_states",
    "main",
    "obs_outage",
    "topic_urn",
]
