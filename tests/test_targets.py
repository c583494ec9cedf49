"""TARGETS and the exemptions, as configured: what is accepted, and what a person is told when it is not."""

from __future__ import annotations

from datetime import date

import pytest

from sysprep_guard.errors import ConfigError
from sysprep_guard.exemptions import Exempt, Rules, ending_soon, exemption, parse_ids, parse_tag
from sysprep_guard.settings import ObsObject, load_settings
from sysprep_guard.targets import Target, find, parse_targets

HOME = "0123456789abcdef0123456789abcdef"
FIN = "0a1b2c3d4e5f67890a1b2c3d4e5f6789"
DOMAIN = "d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6"
DESKTOP = "3f2c1a4e-9b7d-4c2a-8e1f-0a1b2c3d4e01"
TODAY = date(2026, 11, 29)


def settings(**values: str):  # type: ignore[no-untyped-def]
    return load_settings({"REGION": "ap-southeast-1", "PROJECT_ID": HOME, "DRY_RUN": "true", **values}.get)


def test_the_compact_form_names_regions_projects_and_member_accounts() -> None:
    targets = parse_targets(
        f"finance=cn-north-4/{FIN}@acme-finance/sysprep-audit, ap-southeast-1/{HOME};"
        f"\n eu-west-101/{'e' * 32}@{DOMAIN}/audit"
    )
    assert targets == (
        Target(region="cn-north-4", project_id=FIN, account="acme-finance", agency="sysprep-audit", name="finance"),
        Target(region="ap-southeast-1", project_id=HOME),
        Target(region="eu-west-101", project_id="e" * 32, account=DOMAIN, agency="audit"),
    )
    assert [t.label for t in targets] == ["finance", f"ap-southeast-1/{HOME}", f"eu-west-101/{'e' * 32}"]
    assert (targets[0].domain_is_id, targets[2].domain_is_id) == (False, True)  # a domain id, or a name
    assert find(targets, "finance") == find(targets, f"cn-north-4/{FIN}") == targets[0]
    assert find(targets, f"cn-north-4/{HOME}") is None  # a place not configured is never made up


def test_the_json_form_says_the_same() -> None:
    text = f'[{{"region": "cn-north-4", "project_id": "{FIN}", "account": "acme", "agency": "audit"}}]'
    assert parse_targets(text) == (Target(region="cn-north-4", project_id=FIN, account="acme", agency="audit"),)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("cn-north-4", "is not [name=]region/project_id[@account/agency]"),
        (f"cn-north-4/{FIN}@acme", "is not [name=]region/project_id"),
        (f"cn-north-4/{FIN} cn-north-4/{FIN}", f"a project given twice: {FIN}"),
        (f"a=cn-north-4/{FIN} a=cn-north-4/{HOME}", "two targets with the same name"),
        ('[{"region": "cn-north-4"}]', "entry 1: project_id: Field required"),
        ('[{"region": "cn-north-4", "project_id": "' + FIN + '", "account": "x"}]', "give both or neither"),
        ("[not json", "not valid JSON"),
        ("[" * 5000, "not valid JSON"),  # a RecursionError in the parser of 3.10 to 3.12, a syntax error on 3.13
        (f"estate=cn-north-4/{FIN}", "'estate' names the dispatch's own message"),
        (f"cn-north-4/{FIN} eu-west-101/{FIN.upper()}", f"a project given twice: {FIN}"),
        (" , ", "no target given"),
    ],
)
def test_a_wrong_targets_value_fails_configuration_saying_what_and_where(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match="configuration TARGETS") as caught:
        settings(TARGETS=value)
    assert message in str(caught.value)


def test_long_lists_live_in_obs_objects() -> None:
    configured = settings(TARGETS="obs://estate-config/sysprep/targets.txt", EXEMPT_DESKTOP_IDS="obs://estate-config/x")
    assert configured.targets == ObsObject(bucket="estate-config", key="sysprep/targets.txt")
    assert str(configured.exempt_desktop_ids) == "obs://estate-config/x"
    assert settings().fan_out is True and settings(FAN_OUT="false").fan_out is False


def test_exempt_ids_may_carry_an_end_and_comments() -> None:
    other = "3f2c1a4e-9b7d-4c2a-8e1f-0a1b2c3d4e02"
    text = f"{DESKTOP.upper()} until=2027-03-31  # kiosk, approved by the CISO\n{other}\n\n# the end"
    assert parse_ids(text) == {DESKTOP: date(2027, 3, 31), other: None}
    with pytest.raises(ValueError, match="is not a desktop id"):
        parse_ids("desk-01")
    with pytest.raises(ValueError, match="expected until=YYYY-MM-DD"):
        parse_ids(f"{DESKTOP} forever")
    with pytest.raises(ConfigError, match="configuration EXEMPT_DESKTOP_IDS"):
        settings(EXEMPT_DESKTOP_IDS="desk-01")
    assert parse_tag("sysprep-exempt") == ("sysprep-exempt", None)
    assert parse_tag("sysprep=accepted") == ("sysprep", "accepted")
    with pytest.raises(ConfigError, match="configuration EXEMPT_TAG"):
        settings(EXEMPT_TAG="key=")


@pytest.mark.parametrize(
    ("rule", "tags", "exempt", "until"),
    [
        (("sysprep-exempt", None), {"sysprep-exempt": ""}, True, None),
        (("sysprep-exempt", None), {"Sysprep-Exempt": "until=2027-03-31"}, True, "2027-03-31"),
        (("sysprep-exempt", None), {"sysprep-exempt": "approved by bob until:2026-11-29"}, True, "2026-11-29"),
        (("sysprep-exempt", None), {"sysprep-exempt": "2026-11-28"}, False, None),  # ended yesterday
        (("sysprep-exempt", None), {"sysprep-exempt": "until=2026-13-45"}, False, None),  # unreadable: not exempt
        (("sysprep-exempt", None), {"owner": "bob"}, False, None),
        (("sysprep", "accepted"), {"sysprep": "accepted until=2027-01-01"}, True, "2027-01-01"),
        (("sysprep", "accepted"), {"sysprep": "pending"}, False, None),
    ],
)
def test_a_tag_exempts_until_its_end(
    rule: tuple[str, str | None], tags: dict[str, str], exempt: bool, until: str | None
) -> None:
    found, _ = exemption(DESKTOP, tags, Rules(tag_key=rule[0], tag_value=rule[1]), TODAY)
    assert (found is not None) == exempt
    if found is not None:
        assert found.until == until and found.why.startswith(f"tag {rule[0]}")


def test_an_exemption_that_no_longer_holds_says_why() -> None:
    rules = Rules(tag_key="sysprep-exempt", ids={DESKTOP: date(2026, 11, 1)})
    assert exemption(DESKTOP, {}, rules, TODAY) == (None, "EXEMPT_DESKTOP_IDS ended 2026-11-01")
    other = "3f2c1a4e-9b7d-4c2a-8e1f-0a1b2c3d4e02"
    assert exemption(other, {"sysprep-exempt": "until=2026-13-01"}, rules, TODAY)[1] == (
        "tag sysprep-exempt=until=2026-13-01: its date cannot be read"
    )


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        (None, "until=2025-1-31"),
        (None, "until=never"),
        (None, "2027-03-31 until=2025-01-01"),  # two ends: which one was meant cannot be told
        ("approved", "approved until=2025-1-31"),  # whatever the value, the mistake is said
    ],
)
def test_an_end_that_cannot_be_read_exempts_nothing_and_says_so(rule: str | None, value: str) -> None:
    found, why = exemption(DESKTOP, {"sysprep": value}, Rules(tag_key="sysprep", tag_value=rule), TODAY)
    assert found is None and why is not None and "its date cannot be read" in why


def test_an_exemption_ending_within_a_week_is_ending_soon() -> None:
    def ends(day: str | None) -> bool:
        return ending_soon(Exempt(desktop_id=DESKTOP, why="x", until=day), TODAY)

    assert (ends("2026-12-06"), ends("2026-12-07"), ends(None)) == (True, False, False)
