"""Default endpoints: for every region the official SDKs' region tables list, the endpoint they give."""

from __future__ import annotations

import pytest
from huaweicloudsdkces.v1.region.ces_region import CesRegion
from huaweicloudsdkeg.v1.region.eg_region import EgRegion
from huaweicloudsdkfunctiongraph.v2.region.functiongraph_region import FunctionGraphRegion
from huaweicloudsdkiam.v3.region.iam_region import IamRegion
from huaweicloudsdkobs.v1.region.obs_region import ObsRegion
from huaweicloudsdksmn.v2.region.smn_region import SmnRegion
from huaweicloudsdkworkspace.v2.region.workspace_region import WorkspaceRegion

from sysprep_guard.endpoints import default_endpoint
from sysprep_guard.settings import load_settings

# The services the function calls, and those scripts/deploy calls.
TABLES = {
    "workspace": WorkspaceRegion,
    "smn": SmnRegion,
    "obs": ObsRegion,  # the run history (huaweicloudsdkobs's table; the function signs with esdk-obs-python)
    "ces": CesRegion,
    "iam": IamRegion,  # with TARGETS: member accounts' agencies
    "functiongraph": FunctionGraphRegion,  # scripts/deploy, and a fan-out's asynchronous invocations
    "eg": EgRegion,
}


def official(table: type, region: str) -> str:
    endpoints = table.static_fields[region].endpoints
    return endpoints[0] if isinstance(endpoints, list) else endpoints


@pytest.mark.parametrize("service", sorted(TABLES))
def test_every_region_of_the_sdk_tables_gets_the_sdk_endpoint(service: str) -> None:
    table = TABLES[service]
    assert len(table.static_fields) >= 10
    for region in table.static_fields:
        assert default_endpoint(service, region) == official(table, region), (service, region)


def test_regions_on_other_domains_are_configured_by_default() -> None:
    settings = load_settings({"REGION": "eu-west-101", "PROJECT_ID": "0" * 32, "DRY_RUN": "true"}.get)
    assert settings.smn_endpoint == "https://smn.eu-west-101.myhuaweicloud.eu"
    assert settings.workspace_endpoint == official(WorkspaceRegion, "eu-west-101")


def test_a_region_no_table_lists_gets_the_usual_form() -> None:
    assert default_endpoint("workspace", "xx-new-1") == "https://workspace.xx-new-1.myhuaweicloud.com"
