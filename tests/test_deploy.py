"""scripts/deploy against a FunctionGraph (and EventGrid) mocked by `responses`: the calls it makes, the bodies it
sends."""

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

import huaweicloudsdkfunctiongraph.v2.model as fg_model
import pytest
import responses
import yaml
from huaweicloudsdkfunctiongraph.v2.model import (
    CreateFunctionRequestBody,
    CreateFunctionTriggerRequestBody,
    UpdateFunctionAsyncInvokeConfigRequestBody,
    UpdateFunctionCodeRequestBody,
    UpdateFunctionConfigRequestBody,
)

from conftest import FAKE_AK, FAKE_SK, FAKE_TOKEN, PROJECT, REGION, TOPIC
from devkit.template import load_template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yml"
FG = f"https://functiongraph.{REGION}.myhuaweicloud.com"
EG = f"https://eg.{REGION}.myhuaweicloud.com"
URN = f"urn:fss:{REGION}:{PROJECT}:function:default:sysprep-guard:latest"
DEFINITIONS = json.loads((ROOT / "tests" / "data" / "huawei_api_definitions.json").read_text())["services"]
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
    path: str  # FunctionGraph: after /v2/{project_id}/fgs; EventGrid: "eg:" and the path after /v1/{project_id}
    body: Any
    full: str = ""  # the whole path, percent-decoded


@dataclass
class FakeFunctionGraph:
    """The function (None until created), its triggers, its async invocation configuration (None: 404), the
    EventGrid subscriptions, and every call received by either service."""

    config: dict[str, Any] | None = None
    triggers: list[dict[str, Any]] = field(default_factory=list)
    async_config: dict[str, Any] | None = None
    subscriptions: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    fail: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def register(self, mock: responses.RequestsMock) -> None:
        any_path = re.compile(rf"{re.escape(FG)}/v2/{PROJECT}/fgs/.*")
        for method in (responses.GET, responses.POST, responses.PUT, responses.DELETE):
            mock.add_callback(method, any_path, self._answer)
        mock.add_callback(responses.DELETE, re.compile(rf"{re.escape(EG)}/v1/{PROJECT}/.*"), self._answer_eg)

    @property
    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method != "GET"]

    def bodies(self, method: str, suffix: str) -> list[Any]:
        return [c.body for c in self.calls if c.method == method and c.path.endswith(suffix)]

    def _check(self, request: Any) -> None:
        assert request.headers["Authorization"].startswith("SDK-HMAC-SHA256 Access=" + FAKE_AK)
        assert request.headers["X-Security-Token"] == FAKE_TOKEN

    def _failure(self, key: str) -> tuple[int, dict[str, str], str] | None:
        if key not in self.fail:
            return None
        status, error = self.fail[key]
        return status, {}, json.dumps(error)

    def _answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        raw_path = urlsplit(request.url).path
        path = unquote(raw_path).removeprefix(f"/v2/{PROJECT}/fgs")
        body = json.loads(request.body) if request.body else None
        self.calls.append(Call(request.method, path, body, unquote(raw_path)))
        self._check(request)
        if raw_path.rstrip("/").split("/")[-1] != "functions":
            assert quote("urn:fss:", safe="") in raw_path, "the URN is percent-encoded in the path, as the SDK sends it"
        return self._failure(f"{request.method} {path}") or self._route(request.method, path, body)

    def _answer_eg(self, request: Any) -> tuple[int, dict[str, str], str]:
        raw_path = urlsplit(request.url).path
        path = "eg:" + unquote(raw_path).removeprefix(f"/v1/{PROJECT}")
        self.calls.append(Call(request.method, path, None, unquote(raw_path)))
        self._check(request)
        assert not request.body
        failure = self._failure(f"{request.method} {path}")
        if failure:
            return failure
        subscription = path.removeprefix("eg:/subscriptions/")
        if subscription not in self.subscriptions:
            return 404, {}, json.dumps({"error_code": "EG.00014404", "error_msg": "subscription not found"})
        self.subscriptions.discard(subscription)
        return 204, {}, ""

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
        if method == "GET" and path == f"/functions/{URN}/async-invoke-config":
            if self.async_config is None:
                return 404, {}, json.dumps({"error_code": "FSS.1051", "error_msg": "Not found the async config"})
            return 200, {}, json.dumps(self.async_config)
        if method == "PUT" and path == f"/functions/{URN}/async-invoke-config":
            self.async_config = {**body, "func_urn": URN, "created_time": "2026-11-28T02:00:00+08:00"}
            return 200, {}, json.dumps(self.async_config)
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


def template_view(**env: str) -> Any:
    return load_template(TEMPLATE, environ={**ENV, **env})


def deployed_config(package: Path, **changes: Any) -> dict[str, Any]:
    """What ShowFunctionConfig answers for a function deployed from this template and package."""
    body = template_view().function_body()
    return {**body, "func_urn": URN, "digest": _sha512(package.read_bytes()), "code_size": 1234, **changes}


def deployed_triggers(creation: str = "CTS") -> list[dict[str, Any]]:
    """What ListFunctionTriggers answers once the template's triggers are deployed (all of them ACTIVE)."""
    return [
        {
            "trigger_id": f"id-{t['trigger_type_code'].lower()}",
            "trigger_type_code": t["trigger_type_code"],
            "trigger_status": t.get("trigger_status", "ACTIVE"),
            "event_data": {**t["event_data"], "triggerid": "x"},
            "created_time": "2026-11-28T02:00:00+08:00",
        }
        for t in template_view(CREATION_TRIGGER=creation).triggers
    ]


def deployed_async_config(**changes: Any) -> dict[str, Any]:
    """What ShowFunctionAsyncInvokeConfig answers once the template's configuration is set."""
    body = template_view().async_invoke_body()
    return {**body, "func_urn": URN, "enable_async_status_log": False, "created_time": "x", **changes}


def deployed(fg: FakeFunctionGraph, package: Path) -> None:
    """The function as this template and package deploy it, everything in place."""
    fg.config = deployed_config(package)
    fg.triggers = deployed_triggers()
    fg.async_config = deployed_async_config()


def build(model: type, body: Any) -> Any:
    """The official model built from a body: every field one it has, of the type it declares, nested ones too."""
    kwargs = {}
    for key, value in body.items():
        assert key in model.openapi_types, f"{model.__name__} has no field {key}"
        kind = model.openapi_types[key]
        if hasattr(fg_model, kind):
            value = build(getattr(fg_model, kind), value)
        else:
            expected = {"str": str, "int": int, "bool": bool, "list[str]": list}[kind]
            assert isinstance(value, expected) and not (kind == "int" and isinstance(value, bool)), (key, value)
        kwargs[key] = value
    return model(**kwargs)


def without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    return value


def matches_definition(call: Call) -> str:
    """The API Explorer operation (tests/data/huawei_api_definitions.json) whose method and path the call has."""
    for service in ("FunctionGraph", "EG"):
        for name, operation in DEFINITIONS[service].items():
            pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(operation["path"]))
            path = call.full.replace(URN, "URN")  # a URN is one path segment once percent-encoded
            if operation["method"] == call.method and re.fullmatch(pattern, path):
                return name
    raise AssertionError(f"{call.method} {call.full} is no operation of the API definitions")


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
    assert [t["trigger_type_code"] for t in template.triggers] == ["TIMER", "CTS"]
    assert fg.bodies("PUT", "/async-invoke-config") == [template.async_invoke_body()]
    assert not fg.bodies("PUT", "/code") and not fg.bodies("PUT", "/config")
    assert not [c for c in fg.calls if c.path == f"/triggers/{URN}" and c.method == "GET"]
    assert not [c for c in fg.calls if c.method == "GET" and c.path.endswith("/async-invoke-config")]
    out = capsys.readouterr().out
    assert "+ create function sysprep-guard" in out and "+ set async invocation config (new function)" in out
    assert "4 change(s) made" in out


@pytest.mark.parametrize("creation", ["CTS", "EVENTGRID"])
def test_every_body_sent_builds_its_official_request_model(fg: FakeFunctionGraph, package: Path, creation: str) -> None:
    env = {**ENV, "CREATION_TRIGGER": creation}
    fg.config = deployed_config(package, digest="0" * 128, memory_size=128)
    fg.async_config = deployed_async_config(max_async_retry_attempts=1)
    assert run(package, env=env) == 0
    fg.config = None
    assert run(package, env=env) == 0

    models = {
        ("PUT", "/code"): UpdateFunctionCodeRequestBody,
        ("PUT", "/config"): UpdateFunctionConfigRequestBody,
        ("PUT", "/async-invoke-config"): UpdateFunctionAsyncInvokeConfigRequestBody,
        ("POST", "/functions"): CreateFunctionRequestBody,
        ("POST", f"/triggers/{URN}"): CreateFunctionTriggerRequestBody,
    }
    sent = [c for c in fg.writes if c.body is not None]
    assert {
        (c.method, suffix) for c in sent for (m, suffix) in models if c.method == m and c.path.endswith(suffix)
    } == set(models)
    for call in sent:
        (model,) = [m for (method, suffix), m in models.items() if call.method == method and call.path.endswith(suffix)]
        assert without_none(build(model, call.body).to_dict()) == call.body, model.__name__
    (config,) = fg.bodies("PUT", "/config")
    assert set(config) == set(deploy.CONFIG_FIELDS)
    assert [b["trigger_type_code"] for b in fg.bodies("POST", f"/triggers/{URN}")] == ["TIMER", creation] * 2
    for call in fg.calls:
        assert matches_definition(call), call


# Updating.
def test_nothing_is_sent_when_everything_matches(
    fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed(fg, package)
    assert run(package) == 0
    assert fg.writes == []
    assert [c.path for c in fg.calls] == [
        f"/functions/{URN}/config",
        f"/functions/{URN}/async-invoke-config",
        f"/triggers/{URN}",
    ]
    out = capsys.readouterr().out
    assert "= async invocation config unchanged" in out and "nothing to change" in out


def test_unchanged_code_is_not_uploaded_but_changed_configuration_is_sent(
    fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user_data = json.dumps({**template_view().user_data, "DRY_RUN": "true"})
    deployed(fg, package)
    fg.config = deployed_config(package, memory_size=128, user_data=user_data, description=None)
    assert run(package) == 0
    assert fg.bodies("PUT", "/code") == []
    (config,) = fg.bodies("PUT", "/config")
    assert config == {k: template_view().function_body()[k] for k in deploy.CONFIG_FIELDS}
    assert config["memory_size"] == 256 and json.loads(config["user_data"])["DRY_RUN"] == "false"
    out = capsys.readouterr().out
    assert "memory_size 128 -> 256" in out and "user_data.DRY_RUN 'true' -> 'false'" in out
    assert "= code unchanged" in out


def test_changed_code_is_uploaded_as_base64_zip(fg: FakeFunctionGraph, package: Path) -> None:
    deployed(fg, package)
    fg.config = deployed_config(package, digest=_sha512(b"an older package"))
    assert run(package) == 0
    (code,) = fg.bodies("PUT", "/code")
    assert code["code_type"] == "zip" and code["code_filename"] == "sysprep-guard.zip"
    assert base64.b64decode(code["func_code"]["file"]) == package.read_bytes()
    assert fg.bodies("PUT", "/config") == []


def test_a_digest_reported_in_upper_case_still_matches(fg: FakeFunctionGraph, package: Path) -> None:
    deployed(fg, package)
    fg.config = deployed_config(package, digest=_sha512(package.read_bytes()).upper())
    run(package)
    assert fg.writes == []


def test_triggers_are_reconciled_by_type_and_name(
    fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed(fg, package)
    timer, cts = deployed_triggers()
    cts["event_data"]["operations"] = ["Workspace:desktops:createDesktop"]  # changed: replaced
    dropped = {**timer, "trigger_id": "id-old", "event_data": {**timer["event_data"], "name": "old-sweep"}}
    apig = {"trigger_id": "id-apig", "trigger_type_code": "APIG", "trigger_status": "ACTIVE", "event_data": {}}
    fg.triggers = [dropped, cts, apig]  # the sweep missing: created

    assert run(package) == 0

    deleted = [c.path for c in fg.calls if c.method == "DELETE"]
    assert deleted == [f"/triggers/{URN}/TIMER/id-old", f"/triggers/{URN}/CTS/id-cts"]
    created = fg.bodies("POST", f"/triggers/{URN}")
    template = template_view()
    assert created == template.triggers
    assert [c.method for c in fg.writes] == ["DELETE", "DELETE", "POST", "POST"]
    out = capsys.readouterr().out
    assert "+ create TIMER trigger nightly-sysprep-sweep" in out
    assert "- delete TIMER trigger old-sweep (not in template.yml)" in out
    assert "- delete CTS trigger workspace-desktop-created (replaced: operations" in out
    assert "= APIG trigger id-apig left alone" in out


def test_a_duplicate_trigger_is_deleted(fg: FakeFunctionGraph, package: Path) -> None:
    deployed(fg, package)
    fg.triggers.append({**fg.triggers[0], "trigger_id": "id-twin"})
    run(package)
    assert [(c.method, c.path) for c in fg.writes] == [("DELETE", f"/triggers/{URN}/TIMER/id-twin")]


def test_fields_the_api_does_not_echo_are_not_differences(fg: FakeFunctionGraph, package: Path) -> None:
    deployed(fg, package)
    fg.triggers = deployed_triggers("EVENTGRID")
    del fg.triggers[0]["event_data"]["user_event"]
    del fg.triggers[1]["event_data"]["agency"]
    fg.triggers[1]["event_data"]["event_types"].reverse()
    assert run(package, env={**ENV, "CREATION_TRIGGER": "EVENTGRID"}) == 0
    assert fg.writes == []


# --plan.
def test_plan_makes_read_calls_only(fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fg.config = deployed_config(package, digest="0" * 128, timeout=60)
    fg.async_config = deployed_async_config(max_async_retry_attempts=1)
    fg.triggers = [*deployed_triggers()[:1], *deployed_triggers("EVENTGRID")[1:]]
    fg.subscriptions = {"id-eventgrid"}
    assert run(package, "--plan") == 0
    assert {c.method for c in fg.calls} == {"GET"}
    assert fg.subscriptions == {"id-eventgrid"}
    out = capsys.readouterr().out
    assert "~ upload code" in out and "timeout 60 -> 900" in out
    assert "~ update async invocation config: max_async_retry_attempts 1 -> 3" in out
    assert "- delete EventGrid subscription id-eventgrid" in out
    assert "- delete EVENTGRID trigger workspace-cloudtrace (not in template.yml)" in out
    assert "+ create CTS trigger workspace-desktop-created" in out
    assert "6 change(s) planned; nothing was changed" in out


def test_plan_for_a_missing_function(fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(package, "--plan") == 0
    assert [(c.method, c.path) for c in fg.calls] == [("GET", f"/functions/{URN}/config")]
    out = capsys.readouterr().out
    assert "+ create function sysprep-guard" in out and out.count("+ create ") == 3
    assert "+ set async invocation config (new function): max_async_retry_attempts none -> 3" in out


# The creation trigger: only the chosen one, the other kind deleted (an EVENTGRID one with its subscription).
def _writes(fg: FakeFunctionGraph) -> list[tuple[str, str]]:
    return [(c.method, c.path.replace(URN, "URN")) for c in fg.writes]


def test_switching_to_eventgrid_deletes_the_cts_trigger_and_creates_the_eventgrid_one(
    fg: FakeFunctionGraph, package: Path
) -> None:
    deployed(fg, package)
    assert run(package, env={**ENV, "CREATION_TRIGGER": "EVENTGRID"}) == 0
    assert _writes(fg) == [("DELETE", "/triggers/URN/CTS/id-cts"), ("POST", "/triggers/URN")]
    (created,) = fg.bodies("POST", f"/triggers/{URN}")
    assert created == template_view(CREATION_TRIGGER="EVENTGRID").triggers[1]
    assert created["trigger_type_code"] == "EVENTGRID" and "trigger_status" not in created


def test_switching_to_cts_deletes_the_eventgrid_subscription_then_its_trigger(
    fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed(fg, package)
    fg.triggers = deployed_triggers("EVENTGRID")
    fg.subscriptions = {"id-eventgrid", "someone-elses"}
    assert run(package) == 0
    assert _writes(fg) == [
        ("DELETE", "eg:/subscriptions/id-eventgrid"),
        ("DELETE", "/triggers/URN/EVENTGRID/id-eventgrid"),
        ("POST", "/triggers/URN"),
    ]
    assert fg.subscriptions == {"someone-elses"}
    (created,) = fg.bodies("POST", f"/triggers/{URN}")
    assert created["trigger_type_code"] == "CTS"
    assert "- delete EventGrid subscription id-eventgrid (behind EVENTGRID trigger workspace-cloudtrace" in (
        capsys.readouterr().out
    )


def test_none_leaves_only_the_sweep(fg: FakeFunctionGraph, package: Path) -> None:
    deployed(fg, package)
    fg.triggers = [*deployed_triggers("CTS"), *deployed_triggers("EVENTGRID")[1:]]
    fg.subscriptions = {"id-eventgrid"}
    assert run(package, env={**ENV, "CREATION_TRIGGER": "NONE"}) == 0
    assert _writes(fg) == [
        ("DELETE", "/triggers/URN/CTS/id-cts"),
        ("DELETE", "eg:/subscriptions/id-eventgrid"),
        ("DELETE", "/triggers/URN/EVENTGRID/id-eventgrid"),
    ]
    assert fg.subscriptions == set()


def test_a_subscription_already_gone_is_not_an_error(
    fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed(fg, package)
    fg.triggers = deployed_triggers("EVENTGRID")  # and no subscription left
    assert run(package) == 0
    assert ("DELETE", "/triggers/URN/EVENTGRID/id-eventgrid") in _writes(fg)
    assert "= EventGrid subscription id-eventgrid already gone" in capsys.readouterr().out


def test_a_refused_subscription_deletion_stops_before_the_trigger_goes(
    fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed(fg, package)
    fg.triggers = deployed_triggers("EVENTGRID")
    fg.subscriptions = {"id-eventgrid"}
    fg.fail["DELETE eg:/subscriptions/id-eventgrid"] = (403, {"error_code": "EG.00014003", "error_msg": "denied"})
    assert run(package) == 1
    assert _writes(fg) == [("DELETE", "eg:/subscriptions/id-eventgrid")], "the trigger stays, so a rerun finds it"
    err = capsys.readouterr().err
    assert "eventgrid DeleteSubscription failed, HTTP 403, EG.00014003: denied" in err
    assert "the keys may not call DeleteSubscription: grant what README.md lists under Deploying, then rerun" in err


def test_a_changed_eventgrid_trigger_is_replaced_with_its_subscription(fg: FakeFunctionGraph, package: Path) -> None:
    deployed(fg, package)
    fg.triggers = deployed_triggers("EVENTGRID")
    fg.triggers[1]["event_data"]["channel_id"] = "an-older-channel"
    fg.subscriptions = {"id-eventgrid"}
    assert run(package, env={**ENV, "CREATION_TRIGGER": "EVENTGRID"}) == 0
    assert _writes(fg) == [
        ("DELETE", "eg:/subscriptions/id-eventgrid"),
        ("DELETE", "/triggers/URN/EVENTGRID/id-eventgrid"),
        ("POST", "/triggers/URN"),
    ]


# No flapping: what FunctionGraph reports in its own way is not a difference.
@pytest.mark.parametrize(
    ("creation", "index", "status", "replaced"),
    [
        ("CTS", 1, "DISABLED", False),  # a CTS trigger cannot be anything but ACTIVE: never compared
        ("EVENTGRID", 1, "disabled", False),
        ("CTS", 1, None, False),
        ("CTS", 0, "active", False),  # compared without case
        ("CTS", 0, "DISABLED", True),
    ],
)
def test_trigger_status_is_compared_only_where_it_can_differ(
    fg: FakeFunctionGraph, package: Path, creation: str, index: int, status: str | None, replaced: bool
) -> None:
    deployed(fg, package)
    fg.triggers = deployed_triggers(creation)
    fg.subscriptions = {"id-eventgrid"}
    fg.triggers[index]["trigger_status"] = status
    assert run(package, env={**ENV, "CREATION_TRIGGER": creation}) == 0
    assert bool(fg.writes) is replaced
    if replaced:
        assert _writes(fg) == [("DELETE", "/triggers/URN/TIMER/id-timer"), ("POST", "/triggers/URN")]


def test_cts_operations_reported_grouped_or_ordered_otherwise_are_equal(fg: FakeFunctionGraph, package: Path) -> None:
    deployed(fg, package)
    (entry,) = fg.triggers[1]["event_data"]["operations"]
    service, resource, names = entry.split(":")
    fg.triggers[1]["event_data"]["operations"] = [f"{service}:{resource}:{n}" for n in reversed(names.split(";"))]
    assert run(package) == 0
    assert fg.writes == []
    fg.triggers[1]["event_data"]["operations"] = [f"{service}:{resource}:{';'.join(names.split(';')[1:])}"]
    assert run(package) == 0
    assert _writes(fg) == [("DELETE", "/triggers/URN/CTS/id-cts"), ("POST", "/triggers/URN")]


# The asynchronous invocation configuration.
def test_a_differing_async_config_is_updated_to_the_template(
    fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed(fg, package)
    other = f"urn:smn:{REGION}:{PROJECT}:old-topic"
    fg.async_config = deployed_async_config(
        max_async_retry_attempts=1,
        max_async_event_age_in_seconds=3600,
        destination_config={
            "on_success": {"destination": "OBS", "param": '{"bucket": "b"}'},
            "on_failure": {"destination": "SMN", "param": json.dumps({"topic_urn": other})},
        },
    )
    assert run(package) == 0
    assert fg.bodies("PUT", "/async-invoke-config") == [template_view().async_invoke_body()]
    assert [c.method for c in fg.writes] == ["PUT"]
    out = capsys.readouterr().out
    assert "max_async_retry_attempts 1 -> 3" in out and "max_async_event_age_in_seconds 3600 -> 21600" in out
    assert 'on_success OBS {"bucket":"b"} -> none' in out
    assert f'on_failure SMN {{"topic_urn":"{other}"}} -> SMN {{"topic_urn":"{TOPIC}"}}' in out


def test_no_async_config_yet_is_set(fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deployed(fg, package)
    fg.async_config = None  # ShowFunctionAsyncInvokeConfig answers 404
    assert run(package) == 0
    (body,) = fg.bodies("PUT", "/async-invoke-config")
    assert body["max_async_retry_attempts"] == 3 and json.loads(body["destination_config"]["on_failure"]["param"]) == {
        "topic_urn": TOPIC
    }
    assert "+ set async invocation config (none configured)" in capsys.readouterr().out


def test_an_async_config_written_otherwise_is_unchanged(fg: FakeFunctionGraph, package: Path) -> None:
    deployed(fg, package)
    fg.async_config = deployed_async_config(
        destination_config={"on_failure": {"destination": "SMN", "param": f'{{ "topic_urn" : "{TOPIC}" }}'}},
        enable_async_status_log=True,  # not the template's: left alone
        last_modified="2026-11-28T02:00:00+08:00",
    )
    assert run(package) == 0
    assert fg.writes == []


def test_the_failure_topic_parameter_is_sent(fg: FakeFunctionGraph, package: Path) -> None:
    deployed(fg, package)
    other = f"urn:smn:{REGION}:{PROJECT}:sysprep-failures"
    assert run(package, "--param", f"FAILURE_TOPIC_URN={other}", "--param", "ASYNC_RETRY_ATTEMPTS=2") == 0
    (body,) = fg.bodies("PUT", "/async-invoke-config")
    assert json.loads(body["destination_config"]["on_failure"]["param"]) == {"topic_urn": other}
    assert body["max_async_retry_attempts"] == 2


def test_a_refused_async_config_read_stops_naming_the_call(
    fg: FakeFunctionGraph, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed(fg, package)
    fg.fail[f"GET /functions/{URN}/async-invoke-config"] = (403, {"error_code": "FSS.0403", "error_msg": "no"})
    assert run(package) == 1
    err = capsys.readouterr().err
    assert "functiongraph ShowFunctionAsyncInvokeConfig failed, HTTP 403" in err
    assert "the keys may not call ShowFunctionAsyncInvokeConfig" in err
    assert fg.writes == [] and not fg.bodies("POST", f"/triggers/{URN}")


# EventGrid's endpoint.
def test_the_eventgrid_endpoint_follows_the_region() -> None:
    assert deploy.resolve_endpoint(None, REGION, "eg") == EG
    assert deploy.resolve_endpoint(None, "eu-west-101", "eg") == "https://eg.eu-west-101.myhuaweicloud.eu"
    assert deploy.resolve_endpoint("https://eg.example.test/", REGION, "eg") == "https://eg.example.test"


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_the_eventgrid_endpoint_can_be_overridden(package: Path, how: str) -> None:
    fake = FakeFunctionGraph()
    deployed(fake, package)
    fake.triggers = deployed_triggers("EVENTGRID")
    env = {**ENV, "EG_ENDPOINT": "https://eg.example.test"} if how == "environment" else ENV
    args = ["--eg-endpoint", "https://eg.example.test"] if how == "argument" else []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.register(mock)
        other = mock.add(
            responses.DELETE, f"https://eg.example.test/v1/{PROJECT}/subscriptions/id-eventgrid", status=204
        )
        assert run(package, *args, env=env) == 0
        assert other.call_count == 1
    assert not [c for c in fake.calls if c.path.startswith("eg:")], "nothing sent to the region's endpoint"


# Where and how it connects.
def test_the_endpoint_can_be_overridden(package: Path) -> None:
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, re.compile(r"https://fg\.example\.test/v2/.*/config"), status=404, json={})
        mock.add(responses.POST, "https://fg.example.test/v2/" + PROJECT + "/fgs/functions", json={})
        mock.add(responses.PUT, re.compile(r"https://fg\.example\.test/v2/.*/async-invoke-config"), json={})
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
        ("bad-eg-endpoint", "endpoint 'eg.example.test': expected https://host, e.g. https://eg."),
        ("bad-creation-trigger", "parameter CREATION_TRIGGER: 'BOTH' (the value given) is not allowed; use one of"),
        ("disabled-cts", "triggers[1] (CTS trigger 'workspace-desktop-created'): trigger_status DISABLED"),
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
    elif case == "bad-eg-endpoint":
        env["EG_ENDPOINT"] = "eg.example.test"
    elif case == "bad-creation-trigger":
        args += ["--param", "CREATION_TRIGGER=BOTH"]
    elif case == "disabled-cts":
        document = yaml.safe_load(TEMPLATE.read_text())
        document["triggers"][1]["trigger_status"] = "DISABLED"
        (tmp_path / "disabled.yml").write_text(yaml.safe_dump(document))
        args += ["--template", str(tmp_path / "disabled.yml")]
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
