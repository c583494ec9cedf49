"""The artifact itself works: the built zip, unpacked alone, runs on the runtime's Python with no site-packages."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from conftest import load_script
from devkit import emulator
from devkit.template import load_template

ROOT = Path(__file__).resolve().parent.parent
OBS_SDK = {"obs", "Crypto", "crcmod"}  # esdk-obs-python and what it imports: only with STATE_BUCKET
# Declared dependencies left out of the zip: huaweicloudsdkcore's (the function imports only its signer), and
# requests' character detection (the function decodes answers as JSON itself)
NOT_PACKAGED = {"pymongo", "yaml", "bson", "dns", "requests_toolbelt", "six", "simplejson", "charset_normalizer"}
BUCKET = "sysprep-state"

# Runs inside the unpacked zip: only the standard library and the zip's own contents are importable.
RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import index

class Context:  # FunctionGraph's documented context methods
    def __init__(self, user_data, keys):
        self.user_data, self.keys = user_data, keys
    def getRequestID(self): return "package-test"
    def getRemainingTimeInMilliSeconds(self): return 60000
    def getSecurityAccessKey(self): return self.keys[0]
    def getSecuritySecretKey(self): return self.keys[1]
    def getSecurityToken(self): return self.keys[2]
    def getUserData(self, key): return self.user_data.get(key)

config = json.loads(sys.argv[2])
summary = index.handler(config["event"], Context(config["user_data"], config["keys"]))
print("SUMMARY " + json.dumps(summary))
print("MODULES " + json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
crc = sys.modules.get("crcmod.crcmod")  # with the OBS SDK: crcmod's pure-Python code, no C extension
print("CRCMOD " + json.dumps(None if crc is None else {"extension": crc._usingExtension, "file": crc.__file__}))
"""


def runtime_python(version: str) -> str:
    """The template's runtime Python, found the way CI finds it (scripts/find-python); the test that needs it is
    skipped, saying so, where this machine has none."""
    found = subprocess.run([str(ROOT / "scripts" / "find-python"), version], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.skip(f"no Python {version} (the runtime) here to run the zip on: {found.stderr.strip()}")
    return found.stdout.strip()


def run_unpacked(package: Path, tmp_path: Path, user_data: dict[str, str]) -> dict[str, Any]:
    """The zip unpacked alone and invoked once on the runtime's Python with -S (no site-packages): what it printed."""
    version = load_template(ROOT / "template.yml", require_params=False).python_version
    python = runtime_python(version)
    code = tmp_path / "code"
    zipfile.ZipFile(package).extractall(code)
    config = {
        "event": json.loads((ROOT / "events" / "timer.json").read_text()),
        "keys": [emulator.FAKE_AK, emulator.FAKE_SK, emulator.FAKE_TOKEN],
        "user_data": user_data,
    }
    result = subprocess.run(
        [python, "-S", "-c", RUNNER, str(code), json.dumps(config)],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr  # requests' about its character detection is filtered
    tagged = (line.split(" ", 1) for line in result.stdout.splitlines())
    return {tag: json.loads(value) for tag, value in tagged if tag in ("SUMMARY", "MODULES", "CRCMOD")}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "sysprep-guard.zip"
    assert load_script("package").main(["--out", str(out)]) == 0
    return out


def test_the_package_is_small_and_holds_only_what_runs(package: Path) -> None:
    assert package.stat().st_size <= 10 * 1024 * 1024
    names = zipfile.ZipFile(package).namelist()
    assert "index.py" in names and "sysprep_guard/orchestrator.py" in names
    assert any(n.startswith("pydantic_core/") and n.endswith(".so") for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith(("tests/", "devkit/"))]
    assert not [n for n in names if n.split("/")[0].removesuffix(".py") in NOT_PACKAGED]
    # The OBS SDK (for STATE_BUCKET): built from source, crcmod without its C extension (built for the wrong Python)
    assert {"obs/client.py", "Crypto/Cipher/AES.py", "crcmod/_crcfunpy.py"} <= set(names)
    assert not [n for n in names if n.startswith(("obs/", "crcmod/")) and not n.endswith(".py")]
    assert not [n for n in names if n.startswith("Crypto/SelfTest/")]
    # RECORDs name only what the zip holds (not the venv's console scripts): the digest depends on no machine's paths
    records = [n for n in names if n.endswith(".dist-info/RECORD")]
    assert "crcmod-1.7.dist-info/RECORD" in records
    with zipfile.ZipFile(package) as archive:
        for record in records:
            listed = {row[0] for row in csv.reader(io.StringIO(archive.read(record).decode())) if row}
            assert listed <= set(names), (record, sorted(listed - set(names)))


def test_the_sdist_only_packages_become_pure_wheels_without_compiled_files(tmp_path: Path) -> None:
    package = load_script("package")
    assert {name for name, _ in package.source_pins(ROOT / "requirements.txt")} == package.FROM_SOURCE
    built = tmp_path / "crcmod-1.7-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(built, "w") as wheel:
        wheel.writestr("crcmod/__init__.py", "")
        wheel.writestr("crcmod/_crcfunext.cpython-311-x86_64-linux-gnu.so", b"\x7fELF")
        wheel.writestr("crcmod-1.7.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311\n\n")
        wheel.writestr("crcmod-1.7.dist-info/RECORD", "stale\n")
    out = tmp_path / "crcmod-1.7-py3-none-any.whl"
    package.pure_wheel(built, out)
    first = out.read_bytes()
    package.pure_wheel(built, out)
    assert out.read_bytes() == first  # the cached wheel is reproducible too
    wheel = zipfile.ZipFile(out)
    assert wheel.namelist() == ["crcmod/__init__.py", "crcmod-1.7.dist-info/RECORD", "crcmod-1.7.dist-info/WHEEL"]
    assert wheel.read("crcmod-1.7.dist-info/WHEEL").decode().splitlines() == [
        "Wheel-Version: 1.0",
        "Root-Is-Purelib: true",
        "Tag: py3-none-any",
    ]
    record = wheel.read("crcmod-1.7.dist-info/RECORD").decode().splitlines()
    assert [row.split(",")[0] for row in record] == [
        "crcmod-1.7.dist-info/WHEEL",
        "crcmod/__init__.py",
        "crcmod-1.7.dist-info/RECORD",
    ]


def test_the_package_is_reproducible(package: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.zip"
    assert load_script("package").main(["--out", str(again)]) == 0
    assert again.read_bytes() == package.read_bytes()  # deploy uploads code only when the digest changes


def test_the_unpacked_package_runs_alone_on_the_runtime_python(package: Path, tmp_path: Path) -> None:
    fleet = emulator.Fleet.seeded(250, seed=3)
    with emulator.Emulator(fleet=fleet) as emu:
        printed = run_unpacked(package, tmp_path, emu.settings(MIN_SYSPREP_VERSION="3.0.10"))
        published = list(emu.published)
    summary = printed["SUMMARY"]
    assert summary["checked"] + len(summary["unchecked"]) == 250
    assert {f["desktop_id"] for f in summary["non_compliant"]} >= set(fleet.ids("version_below_minimum"))
    assert [p.message_id for p in published] == summary["published"]
    modules = set(printed["MODULES"])
    assert "site" not in modules and not modules & {*NOT_PACKAGED, "devkit"}  # requests uses the standard json
    # Without STATE_BUCKET, importing index, loading the settings and a whole run never import the OBS SDK.
    assert summary["state"] == "off" and not modules & OBS_SDK
    assert printed["CRCMOD"] is None


def test_the_unpacked_package_keeps_its_run_history_in_obs(package: Path, tmp_path: Path) -> None:
    """STATE_BUCKET works from the zip alone: the OBS SDK built from source imports and signs on the runtime's
    Python, and the sweep's run object lands in the emulator's bucket."""
    fleet = emulator.Fleet.seeded(120, seed=5)
    with emulator.Emulator(fleet=fleet, buckets=[BUCKET], ces=True) as emu:
        printed = run_unpacked(package, tmp_path, emu.settings(MIN_SYSPREP_VERSION="3.0.10", STATE_BUCKET=BUCKET))
        published = list(emu.published)
        stored = dict(emu.buckets[BUCKET])
    summary = printed["SUMMARY"]
    assert summary["state"] == "saved", summary["state"]
    assert set(printed["MODULES"]) >= OBS_SDK and not set(printed["MODULES"]) & NOT_PACKAGED
    assert printed["CRCMOD"]["extension"] is False and printed["CRCMOD"]["file"].startswith(str(tmp_path / "code"))
    folder = f"sysprep-guard/runs/{emu.project_id}/"
    runs = [key for key in stored if key.endswith(".json.gz")]
    assert len(runs) == 1, sorted(stored)
    assert re.fullmatch(re.escape(folder) + r"\d{4}/\d\d/\d\d/\d{8}T\d{9}Z-sweep-[0-9a-f]{12}\.json\.gz", runs[0])
    record = json.loads(gzip.decompress(stored[runs[0]].data))
    assert record["kind"] == "sweep" and record["project_id"] == emu.project_id
    assert record["counts"]["checked"] == summary["checked"]
    assert set(record["findings"]) == {f["desktop_id"] for f in summary["non_compliant"]}
    assert sorted(stored) == sorted([runs[0], runs[0].removesuffix(".json.gz") + ".done.delivered.json"])
    assert [p.message_id for p in published] == summary["published"] != []  # no earlier sweep: the full report
