"""The Workspace CTS traces the function acts on: the one list that the code, template.yml and the tests share.

Every name is copied from Huawei's API Explorer definitions (`@CtsMeta(serviceType, resourceType, traceName)` of
the operation named beside it); tests/data/huawei_api_definitions.json keeps the official names, and a test checks
each entry here against it. Workspace records every operation as service `Workspace`, resource type `workspace`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

SERVICE_TYPE = "Workspace"
RESOURCE_TYPE = "workspace"
MAX_CTS_OPERATIONS = 10  # a CTS trigger takes at most 10 operations per service


class Trace(NamedTuple):
    name: str  # traceName, exactly as CTS records it (CreateDesktopOrder has a capital C)
    operation: str  # the API operation it records, as the definitions and the SDK name it
    effect: Literal["create", "reimage"]
    # The request's `type` values that make the operation create or re-image desktops, where one operation does
    # several things; None: every call does. A trace whose request shows another type is skipped.
    request_types: frozenset[str] | None = None
    resource_is_pool: bool = False  # resource_id names a desktop pool, never a desktop


TRACES: tuple[Trace, ...] = (
    Trace("createDesktops", "CreateDesktop", "create"),
    Trace("CreateDesktopOrder", "CreateDesktopOrder", "create"),
    # CreateOrder (yearly/monthly): CreateOrderReq.type names what is ordered; four of its types make or re-image.
    Trace(
        "createOrder",
        "CreateOrder",
        "create",
        frozenset({"createDesktops", "rebuildDesktops", "createDesktopPool", "expandDesktopPool"}),
    ),
    Trace("createDesktopPool", "CreateDesktopPool", "create", resource_is_pool=True),
    Trace("expandDesktopPool", "ExpandDesktopPool", "create", resource_is_pool=True),
    Trace("batchRebuildDesktops", "BatchRebuildDesktopsSystemDisk", "reimage"),
    Trace("rebuildDesktopPool", "RebuildDesktopPool", "reimage", resource_is_pool=True),
    # Change orders of yearly/monthly desktops (CreateBatchChangeOrderRequestBody.type): only CHANGE_IMAGE re-images.
    # CreateChangeOrder (createChangeOrder) is left out: its types (resizeDesktops, expandVolumes, meteredToPeriod)
    # never change the image.
    Trace("createBatchChangeOrder", "CreateDesktopBatchOrder", "reimage", frozenset({"CHANGE_IMAGE"})),
    Trace(
        "createDesktopPoolChangeOrder",
        "CreateDesktopPoolChangeOrder",
        "reimage",
        frozenset({"CHANGE_IMAGE"}),
        resource_is_pool=True,
    ),
)

BY_NAME = {trace.name.lower(): trace for trace in TRACES}  # matched without case: CTS is exact, samples are not


def cts_operations() -> list[str]:
    """CreateFunctionTrigger's event_data.operations for a CTS trigger: `Service:resourceType:op1;op2`."""
    return [f"{SERVICE_TYPE}:{RESOURCE_TYPE}:" + ";".join(trace.name for trace in TRACES)]


assert len(TRACES) <= MAX_CTS_OPERATIONS, "a CTS trigger takes at most 10 operations per service"
