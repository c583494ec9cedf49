"""Notifications: each protocol's rendering against golden files, the JSON Schema, SMN's limits and the split.

Regenerate the golden files after an intended change with `UPDATE_GOLDEN=1 make test`, and read the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from sysprep_guard.notification import (
    JSON_PROTOCOLS,
    MESSAGE_MAX_BYTES,
    SUBJECT_MAX_BYTES,
    Notification,
    Part,
    attributes,
    render,
    subject,
)
from sysprep_guard.policy import Policy
from sysprep_guard.report import Finding, PolicyView, Summary, fingerprint
from sysprep_guard.text import cut_utf8

GOLDEN = Path(__file__).parent / "golden"
SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "notification.schema.json").read_text())
REASONS = [
    ["sysprep_version_below_minimum"],
    ["hibernate_not_supported"],
    ["sysprep_version_below_minimum", "update_route_not_supported"],
    ["no_sysprep_info"],
    ["sysprep_version_unreadable"],
]


def desktop(n: int) -> str:
    return f"7c9e6679-7425-40de-944b-{n:012x}"


def make_summary(findings: int, unchecked: int, **extra: object) -> Summary:
    summary = Summary(
        trigger="timer",
        region="ap-southeast-1",
        project_id="0123456789abcdef0123456789abcdef",
        run_time="2026-11-28T02:00:04Z",
        policy=PolicyView.of(Policy(min_version=(3, 0, 10), require_hibernate=True, require_update_route=True)),
        dry_run=False,
        checked=2355 - unchecked,
        compliant=2355 - unchecked - findings,
        **extra,
    )
    for n in range(findings):
        summary.add_finding(
            Finding(
                desktop_id=desktop(n),
                reasons=REASONS[n % len(REASONS)],
                sysprep_version=None if n % 5 == 3 else ("beta" if n % 5 == 4 else f"3.0.{n % 10}"),
                computer_name=f"fin-desk-{n:03d}" if n % 2 == 0 else None,
                user_name=f"user{n:03d}" if n % 2 == 0 else None,
            )
        )
    for n in range(unchecked):
        summary.add_unchecked(desktop(10_000 + n), "not_ready" if n % 2 else "APIG.0308: throttled")
    summary.finish()
    summary.fingerprint = fingerprint(summary)
    return summary


SCENARIOS = {
    "small": (make_summary(2, 1), MESSAGE_MAX_BYTES),
    "medium": (
        make_summary(40, 6, incomplete=True, unlisted=120, errors=["listing desktops stopped after 2,000 of 2,120"]),
        MESSAGE_MAX_BYTES,
    ),
    # A small limit, so that the split is small enough to read in a golden file.
    "split": (make_summary(45, 4), 20_000),
}


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from its golden file (UPDATE_GOLDEN=1 to accept)"


def rendered(scenario: str) -> list[Notification]:
    summary, limit = SCENARIOS[scenario]
    return list(render(summary, limit))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_protocol_matches_its_golden_file(scenario: str) -> None:
    notifications = rendered(scenario)
    protocols = [n.protocols for n in notifications]
    sep = "\n" + "=" * 100 + "\n"
    golden(f"{scenario}.subject.txt", "".join(n.subject + "\n" for n in notifications))
    golden(f"{scenario}.email.txt", sep.join(p["email"] for p in protocols))
    golden(f"{scenario}.sms.txt", "".join(p["sms"] + "\n" for p in protocols))
    docs = [json.loads(p["https"]) for p in protocols]
    golden(f"{scenario}.json", json.dumps(docs, indent=2, ensure_ascii=False) + "\n")
    golden(f"{scenario}.attributes.json", json.dumps(notifications[0].attributes, indent=2) + "\n")
    for p in protocols:
        assert p["default"] == p["email"]
        assert all(p[name] == p["https"] for name in JSON_PROTOCOLS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_json_document_validates_against_its_published_schema(scenario: str) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for notification in rendered(scenario):
        validator.validate(json.loads(notification.protocols["http"]))


def test_the_schema_rejects_what_it_should() -> None:
    doc = json.loads(rendered("small")[0].protocols["http"])
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for broken in (
        {**doc, "schema_version": "2.0"},
        {**doc, "findings": [{**doc["findings"][0], "reasons": ["made_up"]}]},
        {k: v for k, v in doc.items() if k != "counts"},
    ):
        assert not validator.is_valid(broken)


def test_a_split_lists_every_desktop_exactly_once_and_repeats_the_totals() -> None:
    summary = make_summary(3000, 500)
    notifications = list(render(summary))
    assert len(notifications) > 1
    docs = [json.loads(n.protocols["functionstage"]) for n in notifications]
    listed = [f["desktop_id"] for d in docs for f in d["findings"]] + [
        u["desktop_id"] for d in docs for u in d["unchecked"]
    ]
    expected = [f.desktop_id for f in summary.non_compliant] + [u.desktop_id for u in summary.unchecked]
    assert sorted(listed) == sorted(expected) and len(set(listed)) == len(listed)
    texts = "".join(n.protocols["email"] for n in notifications)
    assert all(texts.count(d) == 1 for d in expected[:50] + expected[-50:])
    for number, (notification, doc) in enumerate(zip(notifications, docs, strict=True), start=1):
        assert doc["part"] == {"number": number, "of": len(notifications)}
        assert doc["counts"]["non_compliant"] == 3000 and doc["counts"]["unchecked"] == 500
        assert notification.subject.endswith(f"part {number}/{len(notifications)}")
        assert len(notification.message_structure.encode()) <= MESSAGE_MAX_BYTES
        assert "3,000 non-compliant" in notification.protocols["email"]


def test_parts_are_filled_not_scattered() -> None:
    summary = make_summary(3000, 500)
    sizes = [len(n.message_structure.encode()) for n in render(summary)]
    assert all(size > 0.9 * MESSAGE_MAX_BYTES for size in sizes[:-1])


def test_subject_is_one_line_within_512_bytes_and_never_cut_through_a_character() -> None:
    summary = make_summary(2, 1)
    project = "project 0123456789abcdef0123456789abcdef"
    assert subject(summary) == f"Sysprep: 2 of 2,355 desktops non-compliant, 1 unchecked (ap-southeast-1, {project})"
    summary.account, summary.target = "acme-finance", "finance"  # a target in a member account: every subject says
    assert subject(summary).endswith(f" (finance: account acme-finance, ap-southeast-1, {project})")
    summary.region = "区域" * 200
    text = subject(summary)
    assert len(text.encode()) <= SUBJECT_MAX_BYTES and "\n" not in text
    text.encode().decode()  # whole characters only
    assert cut_utf8("aé", 2) == "a" and cut_utf8("€" * 300, 512) == "€" * 170


def test_sms_is_one_short_line_without_the_characters_sms_refuses() -> None:
    summary = make_summary(12, 3, incomplete=True)
    text = next(render(summary)).protocols["sms"]
    assert text == (
        "Sysprep ap-southeast-1, project 0123456789abcdef0123456789abcdef: 12/2,355 desktops non-compliant, "
        "3 unchecked, run incomplete."
    )
    summary.region = "[cn]【x】"
    assert not set(next(render(summary)).protocols["sms"]) & set("[]【】")


def test_attributes_let_subscribers_filter_and_follow_smns_value_rules() -> None:
    summary = make_summary(5, 1, incomplete=True)
    assert attributes(summary, Part(number=2, of=3)) == [
        {"name": "report", "type": "STRING", "value": "full"},  # or "changes", with NOTIFY=changes
        {"name": "severity", "type": "STRING", "value": "non_compliant"},
        {"name": "trigger", "type": "STRING", "value": "timer"},
        {"name": "region", "type": "STRING", "value": "ap_southeast_1"},
        # Where, for routing per team: the target's name in TARGETS, or the project.
        {"name": "target", "type": "STRING", "value": "0123456789abcdef0123456789abcdef"},
        # Copies of one part (a publish retried after a timeout) carry the same pair: subscribers can drop them.
        {"name": "fingerprint", "type": "STRING", "value": summary.fingerprint},
        {"name": "part", "type": "STRING", "value": "2_of_3"},
        {
            "name": "reasons",
            "type": "STRING_ARRAY",
            "value": [
                "hibernate_not_supported",
                "no_sysprep_info",
                "sysprep_version_below_minimum",
                "sysprep_version_unreadable",
                "update_route_not_supported",
                "unchecked",
                "incomplete",
            ],
        },
    ]
    assert attributes(make_summary(0, 2))[1]["value"] == "unchecked"
    assert [n.attributes[6]["value"] for n in rendered("split")] == ["1_of_4", "2_of_4", "3_of_4", "4_of_4"]
    summary.target = "fin-team.eu"
    assert attributes(summary)[4] == {"name": "target", "type": "STRING", "value": "fin_team_eu"}


def test_the_policy_is_named_in_every_protocol_for_people() -> None:
    (notification,) = rendered("small")
    assert (
        "Policy: Sysprep version >= 3.0.10, hibernation supported, route update supported."
        in (notification.protocols["email"])
    )
    doc = json.loads(notification.protocols["https"])
    assert doc["policy"]["min_sysprep_version"] == "3.0.10" and doc["policy"]["require_hibernate"] is True


def test_a_whole_fleet_left_unchecked_is_counted_not_listed_desktop_by_desktop() -> None:
    summary = make_summary(10, 100_000)
    notifications = list(render(summary))
    assert len(notifications) <= 5  # a few messages, not hundreds: SMN drops email past 100 per 10 minutes
    docs = [json.loads(n.protocols["http"]) for n in notifications]
    assert sum(len(d["unchecked"]) for d in docs) == 1000
    assert all(d["counts"]["unchecked"] == 100_000 and d["counts"]["unchecked_listed"] == 1000 for d in docs)
    assert sum(len(d["findings"]) for d in docs) == 10  # findings are never cut
    assert "... and 99,000 more that could not be checked" in notifications[-1].protocols["email"]
    assert "unchecked: APIG.0308" in notifications[0].protocols["email"]


def test_fields_from_the_api_are_bounded_so_that_every_finding_fits_a_message(invoke, fleet) -> None:
    (desktop,) = fleet.add(1, version="9" * 60_000)
    summary = invoke({"desktop_ids": [desktop]})
    assert len(summary["non_compliant"][0]["sysprep_version"]) <= 120
    assert summary["published"]
