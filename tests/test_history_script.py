"""The local run history end to end: OBS kept in a directory, scripts/invoke --nights on a drifting fleet, and
scripts/history reading it back (locally, and with --cloud from a bucket named by the function's settings)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import load_script
from devkit import samples
from devkit.emulator import FAKE_AK, FAKE_SK, FAKE_TOKEN, Emulator
from sysprep_guard.client import Credentials
from sysprep_guard.errors import ApiError
from sysprep_guard.obs_store import ObsStore
from sysprep_guard.state import Record, encode, run_key

ROOT = Path(__file__).resolve().parent.parent
TIMER = str(ROOT / "events" / "timer.json")  # fires on Saturday 2026-11-28 at 02:00 UTC+8
KEYS = Credentials(FAKE_AK, FAKE_SK, FAKE_TOKEN)


invoke = load_script("invoke")
history = load_script("history")


@pytest.fixture
def history_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local history in a temporary directory, not the work tree's .devkit/history."""
    folder = tmp_path / "history"
    monkeypatch.setattr(samples, "HISTORY_DIR", folder)
    return folder


def nights(out: str) -> list[str]:
    """Each night's part of scripts/invoke --nights' output."""
    return out.split("\n══ ")[1:]


def run_objects(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json.gz"))


# The emulator's OBS in a directory ------------------------------------------------------------------------------


def test_objects_kept_in_a_directory_outlive_the_emulator(tmp_path: Path) -> None:
    with Emulator(buckets=["sysprep-state"], obs_dir=tmp_path) as emu:
        ObsStore(emu.url, "sysprep-state", KEYS).put("runs/2026/11/27/a.json.gz", b"first")
    assert (tmp_path / "sysprep-state" / "runs" / "2026" / "11" / "27" / "a.json.gz").read_bytes() == b"first"

    with Emulator(buckets=["sysprep-state", "other"], obs_dir=tmp_path) as emu:
        store = ObsStore(emu.url, "sysprep-state", KEYS)
        assert list(store.keys("runs/")) == ["runs/2026/11/27/a.json.gz"]
        assert store.get("runs/2026/11/27/a.json.gz") == b"first"
        assert list(ObsStore(emu.url, "other", KEYS).keys("")) == []


@pytest.mark.parametrize("key", ["runs/../../outside", "runs//twice", "./here"])
def test_a_key_that_cannot_be_a_file_in_its_bucket_is_refused(tmp_path: Path, key: str) -> None:
    with Emulator(buckets=["sysprep-state"], obs_dir=tmp_path / "obs") as emu:
        with pytest.raises(ApiError, match="InvalidArgument"):
            ObsStore(emu.url, "sysprep-state", KEYS).put(key, b"x")
        assert emu.errors == []
    assert [p.name for p in tmp_path.rglob("*")] == ["obs", "sysprep-state"]  # nothing written anywhere


# The fleet's drift ------------------------------------------------------------------------------------------------


def test_the_fleet_drifts_a_little_each_night_the_same_way_every_time() -> None:
    fleet, again = samples.fleet(40), samples.fleet(40)
    assert samples.drift(fleet, 1) == samples.Drift()  # the first night: nothing to drift from
    week = [samples.drift(fleet, night) for night in range(2, 9)]

    assert week == [samples.drift(again, night) for night in range(2, 9)]
    assert all(1 <= len(d.broken) <= 2 and len(d.fixed) == 1 for d in week)
    assert [n for n, d in enumerate(week, start=2) if d.deleted] == [3, 6]
    assert [n for n, d in enumerate(week, start=2) if d.changed] == [4, 8]
    assert [n for n, d in enumerate(week, start=2) if d.rebuilding] == [5]
    assert all(d not in fleet for drift in week for d in drift.deleted)
    assert str(week[1]).startswith("2 fell out of compliance (desk-")


# scripts/invoke --nights ------------------------------------------------------------------------------------------


def test_nights_give_a_full_report_then_change_alerts_and_a_run_object_a_day(
    history_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke.main([TIMER, "--nights", "3", "--desktops", "10"]) == 0
    first, second, monday = nights(capsys.readouterr().out)

    assert first.startswith("night 1 of 3: Saturday 2026-11-28 02:00 UTC+08:00")
    assert "notified full: no complete sweep to compare with yet" in first
    assert "SMN notification 1/1: Sysprep: " in first and "Sysprep changes" not in first

    replica = samples.fleet(10)
    samples.drift(replica, 1)
    drift = samples.drift(replica, 2)
    assert second.startswith("night 2 of 3: Sunday 2026-11-29 02:00 UTC+08:00")
    assert f"Since last night: {drift}." in second
    (alert,) = re.findall(r"SMN notification 1/1: (.*)", second)
    assert alert.startswith("Sysprep changes: 1 desktop newly non-compliant, 1 fixed")
    newly = second.split("Newly non-compliant (1):\n")[1].splitlines()[0]
    assert newly.startswith(f"- {drift.broken[0]} ")
    assert f"- {drift.fixed[0]}: fixed (was: " in second

    assert monday.startswith("night 3 of 3: Monday 2026-11-30 02:00 UTC+08:00")  # FULL_REPORT_DAY
    subjects = re.findall(r"SMN notification \d/2: (Sysprep[^:]*):", monday)
    assert subjects == ["Sysprep changes", "Sysprep"]  # what changed, and the weekly full report

    days = [key.split("/runs/")[1].split("/", 1)[1][:10] for key in run_objects(history_dir)]
    assert days == ["2026/11/27", "2026/11/28", "2026/11/29"]  # 02:00 UTC+8 is the day before in UTC


def test_nights_are_local_only_and_at_least_one(history_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke.main([TIMER, "--nights", "2", "--cloud"]) == 2
    assert "--nights runs on the local emulator only" in capsys.readouterr().err
    assert invoke.main([TIMER, "--nights", "0"]) == 2
    assert "--nights takes a number, 1 or more" in capsys.readouterr().err
    assert not history_dir.exists()


def test_without_nights_invoke_runs_once_and_keeps_no_history(
    history_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke.main([TIMER, "--desktops", "5"]) == 0
    out = capsys.readouterr().out
    assert "══ night" not in out and "Run history" not in out and "STATE_BUCKET" not in out
    assert out.count("SMN notification 1/1: Sysprep: ") == 1
    assert not history_dir.exists()


def test_a_new_nights_run_starts_its_history_afresh(history_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke.main([TIMER, "--nights", "2", "--desktops", "5"]) == 0
    assert invoke.main([TIMER, "--nights", "1", "--desktops", "5"]) == 0
    assert len(run_objects(history_dir)) == 1
    assert "notified full: no complete sweep to compare with yet" in capsys.readouterr().out.split("══ night")[-1]


# scripts/history --------------------------------------------------------------------------------------------------


def test_history_shows_each_nights_counts_and_the_longest_standing_findings(
    history_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke.main([TIMER, "--nights", "5", "--desktops", "20"])
    said = r"── result ─+\nChecked (\d+) desktops: \d+ compliant, (\d+) non-compliant"
    results = re.findall(said, capsys.readouterr().out)

    assert history.main([]) == 0
    out = capsys.readouterr().out
    assert "2026-11-27 to 2026-12-01 (UTC days)" in out and "5 runs read." in out
    table = out.split("Each day's last complete sweep:\n")[1].split("\n\n")[0].splitlines()
    assert table[0].split() == ["day", "(UTC)", "desktops", "checked", "non-compliant", "unchecked:", "not_ready"]
    rows = [line.split() for line in table[1:]]
    assert [row[0] for row in rows] == ["2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30", "2026-12-01"]
    assert [(row[2], row[3]) for row in rows] == results  # what each night's run said
    assert [row[4] for row in rows] == ["1", "1", "1", "1", "3"]  # two desktops re-imaged on the fifth night

    standing = out.split("Longest-standing findings")[1].splitlines()
    assert standing[1].split() == ["desktop", "since", "(UTC)", "days", "sweeps", "reasons"]
    assert standing[2].split()[1:5] == ["2026-11-27", "18:00+", "4", "5"]

    assert history.main(["--days", "2"]) == 0
    assert "2026-11-30 to 2026-12-01 (UTC days)" in capsys.readouterr().out


def test_history_plot_writes_a_png(history_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="--plot's matplotlib: requirements-dev.txt")
    invoke.main([TIMER, "--nights", "3", "--desktops", "5"])
    chart = tmp_path / "history.png"

    assert history.main(["--plot", str(chart)]) == 0

    assert f"Chart written to {chart}." in capsys.readouterr().out
    data = chart.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_an_empty_history_says_how_to_make_one(history_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert history.main([]) == 1
    out = capsys.readouterr().out
    assert "No runs in the local history" in out and "make run EVENT=events/timer.json NIGHTS=7" in out


def test_an_unreadable_run_object_is_skipped_and_counted(history_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    invoke.main([TIMER, "--nights", "2", "--desktops", "5"])
    capsys.readouterr()
    broken = history_dir / "sysprep-state" / run_objects(history_dir / "sysprep-state")[0]
    broken.write_bytes(b"not gzip")

    assert history.main([]) == 0
    out = capsys.readouterr().out
    assert "1 run read; skipped 1 unreadable run object (first: " in out and "BadGzipFile" in out
    assert "2026-11-27  no run" in out


def test_history_cloud_reads_the_bucket_the_functions_settings_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with Emulator(buckets=["team-history"]) as emu:
        record = Record(
            run_id="0123456789ab",
            started="2026-11-27T18:00:00.000Z",
            trigger="timer",
            kind="sweep",
            project_id=emu.project_id,
            region=emu.region,
            policy={},
            counts={"desktops": 9, "checked": 9, "non_compliant": 2, "unchecked": 0},
            findings={"desk-a": ["hibernate_not_supported"], "desk-b": ["no_sysprep_info"]},
        )
        key = run_key("guard/", emu.project_id, history.trend.started(record), "sweep", record.run_id)
        emu.put_object("team-history", key, encode(record))
        for name, value in {
            "STATE_BUCKET": "team-history",
            "STATE_PREFIX": "guard",
            "PROJECT_ID": emu.project_id,
            "REGION": emu.region,
            "ENDPOINTS": f"obs={emu.url}",
            "HUAWEICLOUD_SDK_AK": FAKE_AK,
            "HUAWEICLOUD_SDK_SK": FAKE_SK,
            "HUAWEICLOUD_SDK_SECURITY_TOKEN": FAKE_TOKEN,
        }.items():
            monkeypatch.setenv(name, value)

        assert history.main(["--cloud"]) == 0
        out = capsys.readouterr().out
        assert f"in OBS bucket team-history ({emu.url}), 2026-11-27 to 2026-11-27" in out
        assert "2026-11-27         9        9              2               0" in out

        assert history.main(["--cloud", "--bucket", "elsewhere"]) == 2  # the flag wins over STATE_BUCKET
        assert "NoSuchBucket" in capsys.readouterr().err


def test_history_cloud_says_what_it_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert history.main(["--cloud", "--region", "ap-southeast-1", "--project", "0123456789abcdef"]) == 2
    assert "--cloud needs the bucket: --bucket or STATE_BUCKET" in capsys.readouterr().err
    assert history.main(["--cloud", "--bucket", "b-1", "--region", "ap-southeast-1", "--project", "0123456789ab"]) == 2
    assert "HUAWEICLOUD_SDK_AK" in capsys.readouterr().err
    assert history.main(["--cloud", "--bucket", "b-1"]) == 2
    assert "configuration REGION: is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        history.main(["--bucket", "b-1"])  # the local history has its own
