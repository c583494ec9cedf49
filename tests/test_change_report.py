"""The change alert (NOTIFY=changes): each protocol against golden files, the JSON Schema, SMN's limits, the split.

Regenerate the golden files after an intended change with `UPDATE_GOLDEN=1 make test`, and read the diff.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from sysprep_guard.change_report import ChangeView, fingerprint
from sysprep_guard.changes import Baseline, Changes, compare
from sysprep_guard.notification import JSON_PROTOCOLS, SUBJECT_MAX_BYTES, Notification, render_view
from test_notification import SCHEMA, desktop, golden, make_summary

SINCE = "2026-11-27T02:00:03.517Z"


def scenario(findings: int, unchecked: int, *, newly: int, limit: int = 256 * 1024) -> list[Notification]:
    """A sweep of `make_summary(findings, unchecked)` against a baseline where the first `newly` findings were
    compliant, the next two had other reasons, two more desktops were non-compliant (one fixed since, one gone),
    and the unchecked ones were unchecked already."""
    summary = make_summary(findings, unchecked)
    now = {f.desktop_id: f.reasons for f in summary.non_compliant}
    ids = list(now)
    before = {d: r for d, r in now.items() if d not in ids[:newly]}
    for d in ids[newly : newly + 2]:
        before[d] = ["no_sysprep_info"]
    fixed, gone = desktop(5_000), desktop(5_001)
    before[fixed] = ["hibernate_not_supported"]
    before[gone] = ["sysprep_version_below_minimum"]
    baseline = Baseline(since=SINCE, findings=before, unchecked={u.desktop_id: "not_ready" for u in summary.unchecked})
    changes = compare(baseline, now, {u.desktop_id: u.reason for u in summary.unchecked}, {fixed}.__contains__, True)
    summary.fingerprint = fingerprint(summary, changes)
    return list(render_view(ChangeView(summary, changes), limit))


def test_a_change_alert_matches_its_golden_files() -> None:
    notifications = scenario(6, 1, newly=2)
    (alert,) = notifications
    golden("changes.subject.txt", alert.subject + "\n")
    golden("changes.email.txt", alert.protocols["email"])
    golden("changes.sms.txt", alert.protocols["sms"] + "\n")
    golden("changes.json", json.dumps(json.loads(alert.protocols["https"]), indent=2, ensure_ascii=False) + "\n")
    golden("changes.attributes.json", json.dumps(alert.attributes, indent=2) + "\n")
    assert alert.protocols["default"] == alert.protocols["email"]
    assert all(alert.protocols[name] == alert.protocols["https"] for name in JSON_PROTOCOLS)


@pytest.mark.parametrize("limit", [256 * 1024, 12_000], ids=["whole", "split"])
def test_the_json_document_validates_against_the_published_schema(limit: int) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for notification in scenario(60, 5, newly=40, limit=limit):
        doc = json.loads(notification.protocols["http"])
        validator.validate(doc)
        assert doc["report"] == "changes"
    wrong = {**doc, "resolved": [{"desktop_id": desktop(1), "how": "vanished", "was": []}]}
    assert not validator.is_valid(wrong)


def test_a_split_alert_lists_every_change_once_and_each_part_carries_the_counts() -> None:
    notifications = scenario(300, 20, newly=250, limit=30_000)
    assert len(notifications) > 1
    docs = [json.loads(n.protocols["functiongraph"]) for n in notifications]
    listed = [entry["desktop_id"] for d in docs for entry in (*d["findings"], *d["resolved"])]
    assert len(listed) == len(set(listed)) == 250 + 2 + 2  # new, other reasons, fixed and gone
    assert sum(len(d["unchecked"]) for d in docs) == 20
    assert all(d["counts"] == docs[0]["counts"] for d in docs)
    assert [d["part"] for d in docs] == [{"number": n, "of": len(docs)} for n in range(1, len(docs) + 1)]
    for n in notifications:
        assert len(n.subject.encode()) <= SUBJECT_MAX_BYTES and len(n.message_structure.encode()) <= 30_000
        assert len(n.protocols["sms"]) <= 490 and not set("[]【】") & set(n.protocols["sms"])


def test_the_fingerprint_follows_the_changes_not_the_run() -> None:
    summary = make_summary(3, 0)
    later = make_summary(3, 0)
    later.run_time = "2026-11-29T02:00:04Z"
    changes = Changes(since=SINCE, new=[desktop(0)])
    assert fingerprint(summary, changes) == fingerprint(later, changes)
    assert fingerprint(summary, changes) != fingerprint(summary, Changes(since=SINCE, new=[desktop(1)]))
