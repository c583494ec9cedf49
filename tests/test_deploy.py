"""scripts/deploy against a FunctionGraph mocked by `responses`: the calls it makes and the bodies it sends."""

from __future__ import annotations

import base64
import hashlib
import importlib.machinery
import importlib.util
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
import responses
import yaml
from huaweicloudsdkfunctiongraph.v2.model import (
    CreateFunctionRequestBody,
    CreateFunctionTriggerRequestBody,
    UpdateFunctionCodeRequestBody,
    UpdateFunctionConfigRequestBody,
)

from conftest import FAKE_AK, FAKE_SK, FAKE_TOKEN, PROJECT, REGION, TOPIC
from devkit.template import load_template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yml"
FG = f"https://functiongraph.{REGION}.myhuaweicloud.com"
URN = f"urn:fss:{REGION}:{PROJECT}:function:default:sysprep-guard:latest"
ENV = {
    "REGION": REGION,
    "PROJECT_ID": PROJECT,
    "AGENCY": "fake-agency-test-only",
    "SMN_TOPIC_URN": TOPIC,
    "EVENTGRID_CHANNEL_ID": "fake-channel-test-only",
    "HUAWEICLOUD_SDK_AK": FAKE_AK,
    "HUAWEICLOUD_SDK_SK": FAKE_SK,
    "HUAWEICLOUD_SDK_SECURITY_TOKEN": FAKE_TOKEN,
}


def _load_deploy() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("deploy_script", str(ROOT / "scripts" / "deploy"))
    spec = importlib.util.spec_from_loader("deploy_script", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["deploy_script"] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module


deploy = _load_deploy()


@dataclass
class Call:
    method: str
    path: str
    body: Any


@dataclass
class FakeFunctionGraph:
    """The function (None until created), its triggers, and every call received."""

    config: dict[str, Any] | None = None
    triggers: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    fail: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def register(self, mock: responses.RequestsMock) -> None:
        any_path = re.compile(rf"{re.escape(FG)}/v2/{PROJECT}/fgs/.*")
        for method in (responses.GET, responses.POST, responses.PUT, responses.DELETE):
            mock.add_callback(method, any_path, self._answer)

    @property
    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method != "GET"]

    def bodies(self, method: str, suffix: str) -> list[Any]:
        return [c.body for c in self.calls if c.method == method and c.path.endswith(suffix)]

    def _answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        raw_path = urlsplit(request.url).path
        path = unquote(raw_path).removeprefix(f"/v2/{PROJECT}/fgs")
        body = json.loads(request.body) if request.body else None
        self.calls.append(Call(request.method, path, body))
        assert request.headers["Authorization"].startswith("SDK-HMAC-SHA256 Access=" + FAKE_AK)
        assert request.headers["X-Security-Token"] == FAKE_TOKEN
        if raw_path.rstrip("/").split("/")[-1] != "functions":
            assert quote("urn:fss:", safe="") in raw_path, "the URN is percent-encoded in the path, as the SDK sends it"
        key = f"{request.method} {path}"
        if key in self.fail:
            status, error = self.fail[key]
            return status, {}, json.dumps(error)
        return self._route(request.method, path, body)

    def _route(self, method: str, path: str, body: Any) -> tuple[int, dict[str, str], str]:
        if method == "GET" and path == f"/functions/{URN}/config":
            if self.config is None:
                return 404, {}, json.dumps({"error_code": "FSS.1051", "error_msg": "Not found the function"})
            return 200, {}, json.dumps(self.config)
        if method == "POST" and path == "/functions":
            self.config = {**body, "func_urn": URN, "digest": _sha512(base64.b64decode(body["func_code"]["file"]))}
            return 200, {}, json.dumps({k: v for k, v in self.config.items() if k != "func_code"})
        if method == "PUT" and path == f"/functions/{URN}/code":
            return (
                200,
                {},
                json.dumps({"func_urn": URN, "digest": _sha512(base64.b64decode(body["func_code"]["file"]))}),
            )
        if method == "PUT" and path == f"/functions/{URN}/config":
            return 200, {}, json.dumps({**(self.config or {}), **body})
        if method == "GET" and path == f"/triggers/{URN}":
            return 200, {}, json.dumps(self.triggers)
        if method == "POST" and path == f"/triggers/{URN}":
            return 200, {}, json.dumps({"trigger_id": f"new-{len(self.calls)}", **body})
        if method == "DELETE" and path.startswith(f"/triggers/{URN}/"):
            return 204, {}, ""
        return 404, {}, json.dumps({"error_code": "TEST.404", "error_msg": f"unexpected {method} {path}"})


def _sha512(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


@pytest.fixture
def fg() -> Iterator[FakeFunctionGraph]:
    fake = FakeFunctionGraph()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.register(mock)
        yield fake


@pytest.fixture
def package(tmp_path: Path) -> Path:
    path = tmp_path / "sysprep-guard.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return {}\n")
        archive.writestr("sysprep_guard/__init__.py", "")
    return path


def run(package: Path, *args: str, env: dict[str, str] | None = None) -> int:
    return deploy.main(["--zip", str(package), *args], environ=ENV if env is None else env)


def template_view() -> Any:
    return load_template(TEMPLATE, environ=ENV)


def deployed_config(package: Path, **changes: Any) -> dict[str, Any]:
    """What ShowFunctionConfig answers for a function deployed from this template and package."""
    body = template_view().function_body()
    return {**body, "func_urn": URN, "digest": _sha512(package.read_bytes()), "code_size": 1234, **changes}


def deployed_triggers() -> list[dict[str, Any]]:
    return [
        {
            "trigger_id": f"id-{t['trigger_type_code'].lower()}",
            "trigger_type_code": t["trigger_type_code"],
            "trigger_status": t["trigger_status"],
            "event_data": {**t["event_data"], "triggerid": "x"},
            "created_time": "2026-11-28T02:00:00+08:00",
        }
        for t in template_view().triggers
    ]


# Creating from scratch.
def test_a_missing_function_is_created_with_its_code_and_then_its_triggers(
    fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(package) == 0

    assert [(c.method, c.path) for c in fg.calls][:2] == [("GET", f"/functions/{URN}/config"), ("POST", "/functions")]
    (created,) = fg.bodies("POST", "/functions")
    template = template_view()
    assert {k: v for k, v in created.items() if k != "func_code"} == template.function_body()
    assert base64.b64decode(created["func_code"]["file"]) == package.read_bytes()
    assert json.loads(created["user_data"]) == {k: v for k, v in template.user_data.items() if v}
    assert created["runtime"] == "Python3.10" and created["code_type"] == "zip" and created["xrole"] == ENV["AGENCY"]
    assert fg.bodies("POST", f"/triggers/{URN}") == template.triggers
    assert not fg.bodies("PUT", "/code") and not fg.bodies("PUT", "/config")
    assert not [c for c in fg.calls if c.path == f"/triggers/{URN}" and c.method == "GET"]
    out = capsys.readouterr().out
    assert "+ create function sysprep-guard" in out and "4 change(s) made" in out


def test_the_bodies_sent_are_ones_the_official_models_know(fg: FakeFunctionGraph, package: Path) -> None:
    fg.config = deployed_config(package, digest="0" * 128, memory_size=128)
    run(package)
    (code,) = fg.bodies("PUT", "/code")
    (config,) = fg.bodies("PUT", "/config")
    assert set(code) <= set(UpdateFunctionCodeRequestBody.openapi_types)
    assert set(config) == set(deploy.CONFIG_FIELDS) <= set(UpdateFunctionConfigRequestBody.openapi_types)
    fg.config = None
    fg.calls.clear()
    run(package)
    (created,) = fg.bodies("POST", "/functions")
    assert set(created) <= set(CreateFunctionRequestBody.openapi_types)
    for body in fg.bodies("POST", f"/triggers/{URN}"):
        assert set(body) <= set(CreateFunctionTriggerRequestBody.openapi_types)


# Updating.
def test_nothing_is_sent_when_everything_matches(
    fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fg.config = deployed_config(package)
    fg.triggers = deployed_triggers()
    assert run(package) == 0
    assert fg.writes == []
    assert [c.path for c in fg.calls] == [f"/functions/{URN}/config", f"/triggers/{URN}"]
    assert "nothing to change" in capsys.readouterr().out


def test_unchanged_code_is_not_uploaded_but_changed_configuration_is_sent(
    fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user_data = json.dumps({**template_view().user_data, "DRY_RUN": "true"})
    fg.config = deployed_config(package, memory_size=128, user_data=user_data, description=None)
    fg.triggers = deployed_triggers()
    assert run(package) == 0
    assert fg.bodies("PUT", "/code") == []
    (config,) = fg.bodies("PUT", "/config")
    assert config == {k: template_view().function_body()[k] for k in deploy.CONFIG_FIELDS}
    assert config["memory_size"] == 256 and json.loads(config["user_data"])["DRY_RUN"] == "false"
    out = capsys.readouterr().out
    assert "memory_size 128 -> 256" in out and "user_data.DRY_RUN 'true' -> 'false'" in out
    assert "= code unchanged" in out


def test_changed_code_is_uploaded_as_base64_zip(fg: FakeFunctionGraph, package: Path) -> None:
    fg.config = deployed_config(package, digest=_sha512(b"an older package"))
    fg.triggers = deployed_triggers()
    assert run(package) == 0
    (code,) = fg.bodies("PUT", "/code")
    assert code["code_type"] == "zip" and code["code_filename"] == "sysprep-guard.zip"
    assert base64.b64decode(code["func_code"]["file"]) == package.read_bytes()
    assert fg.bodies("PUT", "/config") == []


def test_a_digest_reported_in_upper_case_still_matches(fg: FakeFunctionGraph, package: Path) -> None:
    fg.config = deployed_config(package, digest=_sha512(package.read_bytes()).upper())
    fg.triggers = deployed_triggers()
    run(package)
    assert fg.writes == []


def test_triggers_are_reconciled_by_type_and_name(
    fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fg.config = deployed_config(package)
    timer, cts, _eventgrid = deployed_triggers()  # EVENTGRID missing: created
    cts["event_data"]["operations"] = ["Workspace:desktops:createDesktop"]  # changed: replaced
    dropped = {**timer, "trigger_id": "id-old", "event_data": {**timer["event_data"], "name": "old-sweep"}}
    apig = {"trigger_id": "id-apig", "trigger_type_code": "APIG", "trigger_status": "ACTIVE", "event_data": {}}
    fg.triggers = [timer, cts, dropped, apig]

    assert run(package) == 0

    deleted = [c.path for c in fg.calls if c.method == "DELETE"]
    assert deleted == [f"/triggers/{URN}/CTS/id-cts", f"/triggers/{URN}/TIMER/id-old"]
    created = fg.bodies("POST", f"/triggers/{URN}")
    template = template_view()
    assert created == [template.triggers[1], template.triggers[2]]
    assert [c.method for c in fg.writes] == ["DELETE", "DELETE", "POST", "POST"]
    out = capsys.readouterr().out
    assert "= TIMER trigger nightly-sysprep-sweep unchanged" in out
    assert "- delete TIMER trigger old-sweep (not in template.yml)" in out
    assert "- delete CTS trigger workspace-desktop-created (replaced: operations" in out
    assert "= APIG trigger id-apig left alone" in out


def test_a_duplicate_trigger_is_deleted(fg: FakeFunctionGraph, package: Path) -> None:
    fg.config = deployed_config(package)
    fg.triggers = deployed_triggers()
    fg.triggers.append({**fg.triggers[0], "trigger_id": "id-twin"})
    run(package)
    assert [(c.method, c.path) for c in fg.writes] == [("DELETE", f"/triggers/{URN}/TIMER/id-twin")]


def test_fields_the_api_does_not_echo_are_not_differences(fg: FakeFunctionGraph, package: Path) -> None:
    fg.config = deployed_config(package)
    fg.triggers = deployed_triggers()
    del fg.triggers[0]["event_data"]["user_event"]
    del fg.triggers[2]["event_data"]["agency"]
    fg.triggers[1]["event_data"]["operations"].reverse()
    run(package)
    assert fg.writes == []


# --plan.
def test_plan_makes_read_calls_only(fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fg.config = deployed_config(package, digest="0" * 128, timeout=60)
    fg.triggers = deployed_triggers()[:1]
    assert run(package, "--plan") == 0
    assert {c.method for c in fg.calls} == {"GET"}
    out = capsys.readouterr().out
    assert "~ upload code" in out and "timeout 60 -> 900" in out
    assert "+ create CTS trigger workspace-desktop-created" in out and "+ create EVENTGRID trigger" in out
    assert "4 change(s) planned; nothing was changed" in out


def test_plan_for_a_missing_function(fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(package, "--plan") == 0
    assert [(c.method, c.path) for c in fg.calls] == [("GET", f"/functions/{URN}/config")]
    out = capsys.readouterr().out
    assert "+ create function sysprep-guard" in out and out.count("+ create ") == 4


# Where and how it connects.
def test_the_endpoint_can_be_overridden(package: Path) -> None:
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, re.compile(r"https://fg\.example\.test/v2/.*/config"), status=404, json={})
        mock.add(responses.POST, "https://fg.example.test/v2/" + PROJECT + "/fgs/functions", json={})
        mock.add(responses.POST, re.compile(r"https://fg\.example\.test/v2/.*/triggers/.*"), json={})
        assert (
            deploy.main(["--zip", str(package)], environ={**ENV, "FUNCTIONGRAPH_ENDPOINT": "https://fg.example.test"})
            == 0
        )
        assert len(mock.calls) == 5


def test_parameters_on_the_command_line_beat_the_environment(fg: FakeFunctionGraph, package: Path) -> None:
    run(package, "--param", "FUNCTION_NAME=other-name", "--param", "DRY_RUN=true")
    (created,) = fg.bodies("POST", "/functions")
    assert created["func_name"] == "other-name" and json.loads(created["user_data"])["DRY_RUN"] == "true"
    assert fg.calls[0].path == f"/functions/{URN.replace('sysprep-guard', 'other-name')}/config"


def test_a_failed_call_stops_with_its_error(
    fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fg.fail["POST /functions"] = (400, {"error_code": "FSS.0400", "error_msg": "bad handler"})
    assert run(package) == 1
    assert "functiongraph CreateFunction failed, HTTP 400, FSS.0400: bad handler" in capsys.readouterr().err
    assert not fg.bodies("POST", f"/triggers/{URN}")


# Bad input: a message naming what to fix, and no call at all.
def _broken_template(tmp_path: Path, runtime: str) -> str:
    document = yaml.safe_load(TEMPLATE.read_text())
    document["function"]["runtime"] = runtime
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def _bad_zip(tmp_path: Path, name: str, content: bytes | None) -> Path:
    path = tmp_path / name
    if content is None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("lib/index.py", "")
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no-package", "no such file; build it with scripts/package"),
        ("not-a-zip", "not a zip file"),
        ("no-index", "no index.py at the zip's root"),
        ("too-big", "over the 40 MB limit"),
        ("no-credentials", "no credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK"),
        ("missing-parameter", "missing parameter SMN_TOPIC_URN"),
        ("bad-runtime", "'Python2.7' is not a supported runtime; use one of Python3.9, Python3.10, Python3.12"),
        ("bad-yaml", "not valid YAML at line 2"),
        ("bad-param", "--param 'PROJECT_ID': expected NAME=VALUE"),
        ("bad-user-data", "function.user_data would not start the function"),
        ("bad-endpoint", "plain http:// only for a loopback host"),
    ],
)
def test_bad_input_stops_before_any_call(
    case: str, message: str, tmp_path: Path, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env, args = dict(ENV), ["--zip", str(package)]
    if case == "no-package":
        args = ["--zip", str(tmp_path / "missing.zip")]
    elif case == "not-a-zip":
        args = ["--zip", str(_bad_zip(tmp_path, "x.zip", b"not a zip"))]
    elif case == "no-index":
        args = ["--zip", str(_bad_zip(tmp_path, "y.zip", None))]
    elif case == "too-big":
        big = tmp_path / "big.zip"
        with big.open("wb") as sparse:
            sparse.truncate(40 * 1024 * 1024 + 1)
        args = ["--zip", str(big)]
    elif case == "no-credentials":
        del env["HUAWEICLOUD_SDK_AK"], env["HUAWEICLOUD_SDK_SK"]
    elif case == "missing-parameter":
        del env["SMN_TOPIC_URN"]
    elif case == "bad-runtime":
        args += ["--template", _broken_template(tmp_path, "Python2.7")]
    elif case == "bad-yaml":
        (tmp_path / "bad.yml").write_text("function: [unclosed\n")
        args += ["--template", str(tmp_path / "bad.yml")]
    elif case == "bad-param":
        args += ["--param", "PROJECT_ID"]
    elif case == "bad-user-data":
        env["SMN_TOPIC_URN"] = f"urn:smn:cn-north-4:{PROJECT}:sysprep-alerts"
    elif case == "bad-endpoint":
        args += ["--endpoint", "http://functiongraph.example.test"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        assert deploy.main(args, environ=env) == 2
        assert len(mock.calls) == 0
    err = capsys.readouterr().err
    assert err.startswith("deploy: ") and message in err
    assert FAKE_SK not in err


def test_the_script_is_executable_with_a_python_shebang() -> None:
    script = ROOT / "scripts" / "deploy"
    assert script.read_text().startswith("#!/usr/bin/env python3\n")
    assert script.stat().st_mode & 0o111
