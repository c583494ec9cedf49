"""The policy: numeric version order, one reason per failed rule, nothing passed by default."""

from __future__ import annotations

import pytest

from sysprep_guard.models import SysprepInfo
from sysprep_guard.policy import Policy, judge, parse_version


def info(version: str | None = "3.0.10", hibernate: bool | None = True, route: bool | None = True) -> SysprepInfo:
    return SysprepInfo(desktop_id="d", sysprep_version=version, support_hibernate=hibernate, support_update_route=route)


@pytest.mark.parametrize(
    ("lower", "higher"),
    [("3.0.9", "3.0.10"), ("2.9", "10.0"), ("3.0", "3.0.1"), ("1.9.99", "2"), ("v3.0.9", "3.0.10")],
)
def test_versions_compare_numerically(lower: str, higher: str) -> None:
    assert parse_version(lower) < parse_version(higher)


def test_trailing_zeros_do_not_change_a_version() -> None:
    assert parse_version("3.0") == parse_version("3.0.0") == parse_version("3")


@pytest.mark.parametrize("text", ["", "beta", "3.x", "3..1", "-1", "3.0.1-rc1"])
def test_unreadable_versions_are_none(text: str) -> None:
    assert parse_version(text) is None


def test_minimum_version_rule() -> None:
    policy = Policy(min_version=parse_version("3.0.10"))
    assert judge(info("3.0.9"), policy) == ["sysprep_version_below_minimum"]
    assert judge(info("3.0.10"), policy) == []
    assert judge(info("3.1"), policy) == []


def test_capability_rules_each_give_their_reason() -> None:
    policy = Policy(require_hibernate=True, require_update_route=True)
    assert judge(info(hibernate=False, route=False), policy) == [
        "hibernate_not_supported",
        "update_route_not_supported",
    ]
    assert judge(info(hibernate=None), policy) == ["hibernate_not_supported"]  # unknown is not supported
    assert judge(info(hibernate=False), Policy()) == []  # not required, not judged


def test_missing_data_is_never_compliant() -> None:
    assert judge(None, Policy()) == ["no_sysprep_info"]
    assert judge(info(version=None), Policy()) == ["sysprep_version_missing"]
    assert judge(info(version="abc"), Policy()) == ["sysprep_version_unreadable"]


def test_policy_describes_itself_for_the_report() -> None:
    text = Policy(min_version=(3, 0, 10), require_hibernate=True).describe()
    assert text == "Sysprep version >= 3.0.10, hibernation supported"
    assert Policy(min_version=(3,)).describe() == "Sysprep version >= 3.0"
