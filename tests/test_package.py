"""The artifact itself works: the built zip, unpacked alone, runs on the runtime's Python with no site-packages."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import subprocess
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from devkit import emulator
from devkit.template import load_template

ROOT = Path(__file__).resolve().parent.parent

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
"""


def load_script(name: str) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(name, str(ROOT / "scripts" / name))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    loader.exec_module(module)
    return module


def runtime_python(version: str) -> str:
    """The template's runtime Python, found the way CI finds it (scripts/find-python); the test that needs it is
    skipped, saying so, where this machine has none."""
    found = subprocess.run([str(ROOT / "scripts" / "find-python"), version], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.skip(f"no Python {version} (the runtime) here to run the zip on: {found.stderr.strip()}")
    return found.stdout.strip()


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
    assert not [n for n in names if n.split("/")[0] in {"pymongo", "yaml", "bson", "dns", "requests_toolbelt"}]


def test_the_package_is_reproducible(package: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.zip"
    assert load_script("package").main(["--out", str(again)]) == 0
    assert again.read_bytes() == package.read_bytes()  # deploy uploads code only when the digest changes


def test_the_unpacked_package_runs_alone_on_the_runtime_python(package: Path, tmp_path: Path) -> None:
    version = load_template(ROOT / "template.yml", require_params=False).python_version
    python = runtime_python(version)
    code = tmp_path / "code"
    zipfile.ZipFile(package).extractall(code)
    fleet = emulator.Fleet.seeded(250, seed=3)
    topic = emulator.topic_urn(emulator.DEFAULT_REGION, emulator.DEFAULT_PROJECT_ID)
    with emulator.Emulator(fleet=fleet, topics=[topic]) as emu:
        config = {
            "event": json.loads((ROOT / "events" / "timer.json").read_text()),
            "keys": [emulator.FAKE_AK, emulator.FAKE_SK, emulator.FAKE_TOKEN],
            "user_data": {
                "REGION": emu.region,
                "PROJECT_ID": emu.project_id,
                "SMN_TOPIC_URN": topic,
                "WORKSPACE_ENDPOINT": emu.url,
                "SMN_ENDPOINT": emu.url,
                "MIN_SYSPREP_VERSION": "3.0.10",
            },
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
        published = list(emu.published)
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.startswith(("SUMMARY", "MODULES")))
    summary = json.loads(lines["SUMMARY"])
    assert summary["checked"] + len(summary["unchecked"]) == 250
    assert {f["desktop_id"] for f in summary["non_compliant"]} >= set(fleet.ids("version_below_minimum"))
    assert [p.message_id for p in published] == summary["published"]
    modules = set(json.loads(lines["MODULES"]))
    assert "site" not in modules and not modules & {"pymongo", "yaml", "devkit"}
