"""Default endpoints per service and region, as the official SDKs' region tables give them.

Most are https://{service}.{region}.myhuaweicloud.com; the exceptions below are copied from the region tables of
the huaweicloudsdk* 3.1.219 packages (tests/test_endpoints.py checks every region those tables list). A region
they do not list gets the usual form: configure the endpoint where that is wrong.
"""

from __future__ import annotations

_EXCEPTIONS: dict[str, dict[str, str]] = {
    "eg": {"eu-west-101": "https://eg.eu-west-101.myhuaweicloud.eu"},  # scripts/deploy only
    "iam": {"eu-west-101": "https://iam.eu-west-101.myhuaweicloud.eu"},
    "obs": {"eu-west-101": "https://obs.eu-west-101.myhuaweicloud.eu"},
    "smn": {
        "cn-north-2": "https://smn.cn-north-2.myhuaweicloud.cn",
        "eu-west-101": "https://smn.eu-west-101.myhuaweicloud.eu",
    },
}


def default_endpoint(service: str, region: str) -> str:
    return _EXCEPTIONS.get(service, {}).get(region) or f"https://{service}.{region}.myhuaweicloud.com"
