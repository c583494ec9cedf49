"""The notification: subject within 512 bytes, every desktop listed, split under 256 KB."""

from __future__ import annotations

from conftest import uuid_for
from sysprep_guard.report import Finding, Summary, Unchecked, cut_utf8, render, subject_of


def summary(findings: int, unchecked: int = 0) -> Summary:
    return Summary(
        trigger="timer",
        region="ap-southeast-1",
        project_id="p",
        policy="Sysprep version >= 3.0.10",
        dry_run=False,
        checked=findings + 5,
        compliant=5,
        non_compliant=[
            Finding(desktop_id=uuid_for(n), reasons=["sysprep_version_below_minimum"], computer_name="é" * 40)
            for n in range(findings)
        ],
        unchecked=[Unchecked(desktop_id=uuid_for(10**6 + n), reason="not_ready") for n in range(unchecked)],
    )


def test_subject_says_how_many_and_where() -> None:
    assert subject_of(summary(2, 1)) == "Sysprep: 2 of 8 desktops non-compliant, 1 unchecked (ap-southeast-1)"


def test_cut_never_splits_a_character() -> None:
    assert cut_utf8("aé", 2) == "a"
    assert len(cut_utf8("€" * 300, 512).encode()) <= 512


def test_a_large_report_is_split_into_parts_that_list_every_desktop_once() -> None:
    big = summary(3000, 500)
    messages = render(big)
    assert len(messages) > 1
    assert all(len(m.message.encode()) <= 256 * 1024 for m in messages)
    assert all(len(m.subject.encode()) <= 512 for m in messages)
    assert messages[1].subject.endswith(f"(part 2/{len(messages)})")
    text = "".join(m.message for m in messages)
    for desktop in [*big.non_compliant, *big.unchecked]:
        assert text.count(desktop.desktop_id) == 1
    assert all("3,000 non-compliant" in m.message for m in messages)  # totals in every part


def test_a_small_report_is_one_message() -> None:
    (message,) = render(summary(1, 1))
    assert "Non-compliant desktops:" in message.message and "could not be checked:" in message.message
    assert "part" not in message.subject
