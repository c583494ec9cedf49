"""A local stand-in for the Huawei Cloud endpoints the function calls, signature checks included.

One `ThreadingHTTPServer` on 127.0.0.1 serves every emulated service (one module each: `workspace`, `smn`), so
the function is configured with WORKSPACE_ENDPOINT = SMN_ENDPOINT = `emulator.url`. Like the API gateway, it
refuses any request that is not signed SDK-HMAC-SHA256 with a key it knows (checked with huaweicloudsdkcore's own
signer), and it enforces the documented limits, so that a request the emulator accepts is one the cloud would
accept. It answers as the cloud documents it; misbehaviour beyond its documented faults belongs to the hostile
test servers, not here.

    with Emulator(fleet=Fleet.seeded(500)) as emu:
        emu.inject("sysprep", Fault.throttled())
        ...  # point the function at emu.url, sign with FAKE_AK / FAKE_SK / FAKE_TOKEN

`python -m devkit.emulator --port 8080 --desktops 50` runs it in the foreground until Ctrl-C.
Error codes that Huawei documents are used as documented (APIG.0101, APIG.0201, APIG.0301, APIG.0308,
SMN.0006, SMN.0021, SMN.0032); the WKS.* codes and SMN.0001 are the emulator's own.
"""

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
from .http import MAX_DATE_SKEW, MAX_REQUEST_BYTES
from .smn import ATTRIBUTES_MAX, MESSAGE_MAX_BYTES, SUBJECT_MAX_BYTES
from .workspace import DETAIL_IDS_MAX, LIST_MAX, SYSPREP_MAX, job_states

__all__ = [
    "ATTRIBUTES_MAX",
    "BUILDING",
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
    "KINDS",
    "LIST_MAX",
    "MAX_DATE_SKEW",
    "MAX_REQUEST_BYTES",
    "MESSAGE_MAX_BYTES",
    "REBUILDING",
    "SUBJECT_MAX_BYTES",
    "SYSPREP_MAX",
    "Desktop",
    "Emulator",
    "Exchange",
    "Fault",
    "Fleet",
    "Published",
    "Route",
    "Sysprep",
    "banner",
    "job_states",
    "main",
    "topic_urn",
]
