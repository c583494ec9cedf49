"""A local stand-in for the Huawei Cloud endpoints the function calls, signature checks included.

One `ThreadingHTTPServer` on 127.0.0.1 serves every emulated service (one module each: `workspace`, `smn`, and on
request `ces` and `obs`), so the function is configured with one endpoint, `emulator.url`, for all of them. Each
service sits behind its endpoint's checks (`http.Endpoint`): like the API gateway, the emulator refuses any
Workspace, SMN or CES request that is not signed SDK-HMAC-SHA256 with a key it knows (checked with
huaweicloudsdkcore's own signer), and any OBS request whose OBS signature does not match (recomputed with
esdk-obs-python's own signer). It enforces the documented limits, so that a request the emulator accepts is one
the cloud would accept. It answers as the cloud documents it; misbehaviour beyond its documented faults belongs to
the hostile test servers, not here.

    with Emulator(fleet=Fleet.seeded(500), buckets=["sysprep-state"], ces=True) as emu:
        emu.inject("sysprep", Fault.throttled())
        emu.inject("obs_put", obs_outage())
        ...  # point the function at emu.url, sign with FAKE_AK / FAKE_SK / FAKE_TOKEN

`python -m devkit.emulator --port 8080 --desktops 50` runs it in the foreground until Ctrl-C.
Error codes that Huawei documents are used as documented (APIG.0101, APIG.0201, APIG.0301, APIG.0308,
SMN.0006, SMN.0021, SMN.0032, ces.0001, ces.0009, ces.0014, ces.0017, and OBS's codes); the WKS.* codes and
SMN.0001 are the emulator's own.
"""

from .ces import BODY_MAX_BYTES as CES_BODY_MAX_BYTES
from .ces import POINTS_MAX, MetricPoint
from .cli import banner, main
from .core import (
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
from .faults import Fault
from .fleet import BUILDING, COMPLIANT, CREATING, KINDS, REBUILDING, Desktop, Fleet, Sysprep
from .http import GATEWAY, MAX_DATE_SKEW, MAX_REQUEST_BYTES, Endpoint
from .obs import LIST_MAX as OBS_LIST_MAX
from .obs import StoredObject
from .obs import outage as obs_outage
from .smn import ATTRIBUTES_MAX, MESSAGE_MAX_BYTES, SUBJECT_MAX_BYTES
from .workspace import DETAIL_IDS_MAX, LIST_MAX, SYSPREP_MAX, job_states

__all__ = [
    "ATTRIBUTES_MAX",
    "BUILDING",
    "CES_BODY_MAX_BYTES",
    "COMPLIANT",
    "CREATING",
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
    "Desktop",
    "Emulator",
    "Endpoint",
    "Exchange",
    "Fault",
    "Fleet",
    "MetricPoint",
    "Published",
    "Route",
    "StoredObject",
    "Sysprep",
    "banner",
    "job_states",
    "main",
    "obs_outage",
    "topic_urn",
]
