"""Huawei's definitions are the oracle: what the function sends and what the emulator answers, held to them.

The function runs every sample event and a sweep against a recording emulator. Then:
- every request it sent builds the official request model of its operation (huaweicloudsdkworkspace and
  huaweicloudsdksmn 3.1.219, test-only), with no field the model lacks;
- every answer the emulator gave deserialises into the official response model with no field lost;
- the emulator serves exactly the operations the function calls (and ShowSysprepInfo, the benchmark's baseline),
  each at the method and path of the API Explorer definitions (tests/data/huawei_api_definitions.json);
- the IAM policies grant exactly the actions of the calls made (with a history, metrics, an estate's fan-out and
  its member accounts), and every trace name the function acts on is a real Workspace trace of the operation it
  names.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import huaweicloudsdkces.v1.model as ces_models
import huaweicloudsdkfunctiongraph.v2.model as functiongraph_models
import huaweicloudsdkiam.v3.model as iam_models
import huaweicloudsdksmn.v2.model as smn_models
import huaweicloudsdkworkspace.v2.model as workspace_models
import pytest
from huaweicloudsdkcore.client import Client
from huaweicloudsdkcore.exceptions.exceptions import SdkException
from huaweicloudsdksmn.v2 import SmnClient
from huaweicloudsdkworkspace.v2 import WorkspaceClient

import index
from conftest import EVENTS, FakeClock, load_event
from devkit import samples
from devkit.context import Context
from devkit.emulator import FAKE_AK, FAKE_SK, FAKE_TOKEN, Emulator, Exchange, Fleet
from sysprep_guard.permissions import ACTIONS
from sysprep_guard.traces import RESOURCE_TYPE, SERVICE_TYPE, TRACES, cts_operations

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = json.loads((ROOT / "tests" / "data" / "huawei_api_definitions.json").read_text())
SERVICE_OF = {"workspace": "Workspace", "smn": "SMN"}
MODELS = {
    "Workspace": workspace_models,
    "SMN": smn_models,
    "CES": ces_models,
    "IAM": iam_models,
    "FunctionGraph": functiongraph_models,
}
BUCKET = "sysprep-state"
BASELINE_ONLY = {"ShowSysprepInfo"}  # served for benchmarks/ (the official client's per-desktop way), never called
# The IAM actions of operations whose definition carries none, from their API pages (see permissions.py).
DOCUMENTED_ACTIONS = {
    "ListDesktops": "workspace:desktops:list",  # ListDesktops page, "Authorization Information"
    "ListDesktopsDetail": "workspace:desktops:listDetail",  # Workspace "Permissions and Supported Actions"
    "ShowJob": "workspace:jobs:get",  # ShowJob page (REFERENCE.md)
    "PublishMessage": "smn:topic:publish",  # PublishMessage page
    # IAM's agency policy definition (CreateAgencyCustomPolicy: AgencyPolicyStatement.Action), and the user guide.
    "CreateTemporaryAccessKeyByAgency": "iam:agencies:assume",
    # Open Telekom Cloud's FunctionGraph documentation and samples (Huawei's table could not be read: README).
    "AsyncInvokeFunction": "functiongraph:function:invokeAsync",
}


def definition(operation: str) -> dict[str, Any]:
    for service in DEFINITIONS["services"].values():
        if operation in service:
            return service[operation]
    raise KeyError(operation)


def service_of(operation: str) -> str:
    return next(name for name, ops in DEFINITIONS["services"].items() if operation in ops)


def sdk_route(operation: str) -> tuple[str, str]:
    """(method, path) as the official SDK client calls the operation."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
    client = WorkspaceClient if hasattr(WorkspaceClient, f"_{snake}_http_info") else SmnClient
    request = getattr(MODELS["Workspace" if client is WorkspaceClient else "SMN"], f"{operation}Request")()
    info = getattr(client, f"_{snake}_http_info")(request)
    return info["method"], info["resource_path"]


def recorded_runs(runs: list[tuple[Any, Fleet, dict[str, str]]], times: int = 1) -> list[Exchange]:
    """Every call the function made on these runs (event, fleet, extra settings; each `times` in a row on one
    emulator), with the emulator's answers."""
    recorded: list[Exchange] = []
    clock = FakeClock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(index, "Clock", lambda: clock)
        for event, fleet, extra in runs:
            patch.setattr(index, "_services", None)
            with Emulator(fleet=fleet, record=True, buckets=[BUCKET], ces=True) as emu:
                samples.stage(emu, event)
                user_data = emu.settings(**samples.LOCAL_POLICY, **extra)
                for _ in range(times):
                    context = Context(
                        user_data, access_key=FAKE_AK, secret_key=FAKE_SK, security_token=FAKE_TOKEN, now=clock.now
                    )
                    index.handler(event, context)
                recorded += emu.exchanges
                assert emu.errors == []
    return recorded


@pytest.fixture(scope="module")
def exchanges() -> list[Exchange]:
    """Every call the function made running each sample event and a two-page sweep, with no optional feature."""
    runs = [(load_event(p.name), samples.fleet(0), {}) for p in sorted(EVENTS.glob("*.json"))]
    runs.append((load_event("timer.json"), Fleet.seeded(1_200, seed=3), {}))
    return recorded_runs(runs)


@pytest.fixture(scope="module")
def featured() -> list[Exchange]:
    """The calls of two sweeps with the run history (STATE_BUCKET) and Cloud Eye metrics (METRICS) on."""
    extra = {"STATE_BUCKET": BUCKET, "METRICS": "true"}
    return recorded_runs([(load_event("timer.json"), samples.fleet(), extra)], times=2)


@pytest.fixture(scope="module")
def estate() -> list[Exchange]:
    """The calls of a fanned-out sweep of the sample estate (events/estate-sweep.json): the dispatch, and each
    target's run (one in a member account, through its agency), in this process."""
    clock = FakeClock()
    with pytest.MonkeyPatch.context() as patch, Emulator(fleet=samples.fleet(0), record=True) as emu:
        patch.setattr(index, "Clock", lambda: clock)
        patch.setattr(index, "_services", None)
        user_data = emu.settings(**samples.LOCAL_POLICY, **samples.SAMPLE_SETTINGS["estate-sweep.json"](emu))

        def context(request_id: str | None = None) -> Context:
            keys = {"access_key": FAKE_AK, "secret_key": FAKE_SK, "security_token": FAKE_TOKEN}
            return Context(user_data, **keys, request_id=request_id, now=clock.now)

        samples.stage_estate(emu, lambda event, request_id: index.handler(event, context(request_id)))
        index.handler(load_event("estate-sweep.json"), context())
        assert emu.wait_for_invocations() and all(i.error is None for i in emu.invocations)
        assert emu.errors == []
        return emu.exchanges


# Building and checking the official models ----------------------------------------------------------------


class _Models(Client):
    """The SDK's own deserialiser, over one service's model package."""

    def __init__(self, package: Any) -> None:
        super().__init__()
        self.model_package = package


def lost_fields(data: Any, kind: str, package: Any, where: str = "") -> Iterator[str]:
    """Where `data` holds a field (or a value type) that the model type `kind` cannot carry."""
    if data is None:
        return
    if kind.startswith("list["):
        if not isinstance(data, list):
            yield f"{where or 'body'}: a list expected, got {type(data).__name__}"
            return
        for i, item in enumerate(data):
            yield from lost_fields(item, kind[5:-1], package, f"{where}[{i}]")
        return
    if kind.startswith("dict("):
        value_kind = re.match(r"dict\(([^,]*), (.*)\)", kind).group(2)  # type: ignore[union-attr]
        for key, value in (data or {}).items():
            yield from lost_fields(value, value_kind, package, f"{where}.{key}")
        return
    primitive = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}
    if kind in primitive:
        if (kind == "int" and isinstance(data, bool)) or not isinstance(data, primitive[kind]):
            yield f"{where}: {kind} expected, got {data!r}"
        return
    model = getattr(package, kind)
    if not isinstance(data, dict):
        yield f"{where or 'body'}: a {kind} object expected, got {type(data).__name__}"
        return
    wire = {name: attr for attr, name in model.attribute_map.items()}
    for key, value in data.items():
        if key not in wire:
            yield f"{where}.{key}: not a field of {kind}" if where else f"{key}: not a field of {kind}"
            continue
        yield from lost_fields(value, model.openapi_types[wire[key]], package, f"{where}.{key}" if where else key)


def deserialise(data: Any, kind: str, package: Any) -> Any:
    """The SDK's deserialisation, with its type-conversion warnings made errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return _Models(package)._deserialize(data, kind)


def query_object(exchange: Exchange, request_model: Any) -> dict[str, Any]:
    """The query as the request model's fields: a parameter given more than once (or a list field) is a list."""
    types = {request_model.attribute_map[a]: t for a, t in request_model.openapi_types.items()}
    query: dict[str, Any] = {}
    for key, value in exchange.request.query:
        kind = types.get(key, "str")
        typed: Any = int(value) if kind == "int" else value
        if kind.startswith("list["):
            query.setdefault(key, []).append(typed)
        else:
            assert key not in query, f"{exchange.operation}: {key} given twice"
            query[key] = typed
    return query


def wire(value: Any) -> Any:
    """An SDK model as the SDK would send it: its wire names, without the fields left unset."""
    if isinstance(value, list):
        return [wire(v) for v in value]
    if hasattr(value, "attribute_map"):
        fields = {value.attribute_map[a]: wire(getattr(value, a)) for a in value.openapi_types}
        return {k: v for k, v in fields.items() if v is not None}
    return value


def path_parameters(exchange: Exchange) -> dict[str, str]:
    template = definition(exchange.operation)["path"]
    pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "/?$"
    match = re.match(pattern, exchange.request.path)
    assert match, f"{exchange.operation}: {exchange.request.path} is not {template}"
    return {k: unquote(v) for k, v in match.groupdict().items() if k != "project_id"}


# The tests ----------------------------------------------------------------------------------------------


def test_the_function_makes_the_calls_expected(
    exchanges: list[Exchange], featured: list[Exchange], estate: list[Exchange]
) -> None:
    made = {e.operation for e in exchanges}
    assert made == {"ListDesktops", "ListDesktopsDetail", "CheckSysprepInfo", "ShowJob", "PublishMessage"}
    assert {e.operation for e in featured} - made == {"PutObject", "ListObjects", "GetObject", "CreateMetricData"}
    assert {e.operation for e in estate} - made == {"CreateTemporaryAccessKeyByAgency", "AsyncInvokeFunction"}


def test_every_request_builds_the_official_request_model(
    exchanges: list[Exchange], featured: list[Exchange], estate: list[Exchange]
) -> None:
    sdk_signed = [
        e for e in exchanges + featured + estate if service_of(e.operation) != "OBS"
    ]  # OBS: tests/test_emulator_storage.py
    assert {e.operation for e in sdk_signed} >= {
        "CreateMetricData",
        "ListDesktops",
        "PublishMessage",
        "CreateTemporaryAccessKeyByAgency",
        "AsyncInvokeFunction",
    }
    for exchange in sdk_signed:
        service = service_of(exchange.operation)
        package = MODELS[service]
        request_model = getattr(package, f"{exchange.operation}Request")
        fields: dict[str, Any] = {**path_parameters(exchange), **query_object(exchange, request_model)}
        if exchange.request.body:
            fields["body"] = json.loads(exchange.request.body)
        assert list(lost_fields(fields, f"{exchange.operation}Request", package)) == [], exchange.operation
        built = deserialise(fields, f"{exchange.operation}Request", package)
        assert built.to_dict() is not None
        if "body" in fields:  # the body is what the SDK would have sent, field for field
            assert wire(built.body) == fields["body"], exchange.operation


def test_every_answer_deserialises_into_the_official_response_model_with_no_field_lost(
    exchanges: list[Exchange], estate: list[Exchange]
) -> None:
    seen = set()
    created = {"CreateTemporaryAccessKeyByAgency": 201, "AsyncInvokeFunction": 202}  # their definitions' statuses
    for exchange in exchanges + estate:
        assert exchange.answer.status == created.get(exchange.operation, 200), exchange.operation
        package = MODELS[service_of(exchange.operation)]
        data = json.loads(exchange.answer.body)
        kind = f"{exchange.operation}Response"
        assert list(lost_fields(data, kind, package)) == [], exchange.operation
        deserialise(data, kind, package)
        seen.add(exchange.operation)
    assert seen == {e.operation for e in exchanges + estate}


def test_the_emulator_serves_exactly_the_official_operations_the_function_calls(exchanges: list[Exchange]) -> None:
    with Emulator() as emu:
        routes = {route.operation: route for route in emu.routes}
    assert set(routes) == {e.operation for e in exchanges} | BASELINE_ONLY
    for operation, route in routes.items():
        method, path = sdk_route(operation)
        try:  # where the definitions snapshot has the operation, it and the SDK must agree
            official = definition(operation)
            assert (official["method"], official["path"]) == (method, path), operation
        except KeyError:
            assert operation in BASELINE_ONLY  # ShowSysprepInfo: in the SDK, not in the definitions snapshot
        assert route.method == method, operation
        assert route.pattern.match(re.sub(r"\{(\w+)\}", "x", path)), f"{operation}: the emulator does not serve {path}"


def actions_of(exchanges: list[Exchange]) -> set[str]:
    """The IAM action of each call made, as its source names it; and what the function tells operators agrees."""
    needed = set()
    for operation in {e.operation for e in exchanges}:
        official = definition(operation)["iam_action"] or DOCUMENTED_ACTIONS[operation]
        call = f"{service_of(operation).lower()} {operation}"
        assert ACTIONS[call] == official, call
        needed.add(official)
    return needed


def granted(name: str) -> set[str]:
    policy = json.loads((ROOT / "docs" / name).read_text())
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def test_the_iam_policies_grant_exactly_the_actions_of_the_calls_made(
    exchanges: list[Exchange], featured: list[Exchange], estate: list[Exchange]
) -> None:
    base = actions_of(exchanges)
    assert granted("iam-policy.json") == base
    assert granted("iam-policy-metrics.json") == actions_of([e for e in featured if e.operation == "CreateMetricData"])
    history = actions_of([e for e in featured if service_of(e.operation) == "OBS"])
    assert (
        granted("iam-policy-history.json")
        == history
        == {
            "obs:object:PutObject",
            "obs:object:GetObject",
            "obs:bucket:ListBucket",
        }
    )
    assert granted("iam-policy-fanout.json") == actions_of([e for e in estate if e.operation == "AsyncInvokeFunction"])
    assert granted("iam-policy-assume.json") == actions_of(
        [e for e in estate if e.operation == "CreateTemporaryAccessKeyByAgency"]
    )
    # In a member account, the agency needs what a target's sweep calls there, and nothing else.
    member = [e for e in estate if f"/v2/{samples.FINANCE_PROJECT}/" in e.request.path]
    assert granted("iam-member-account.json") == actions_of(member) and len(member) >= 2
    everything = base | actions_of(featured) | actions_of(estate)
    assert set(ACTIONS.values()) == everything  # no action named for a call never made
    # The OBS actions only on the state bucket and its objects (OBS is a global service: a policy of its own).
    policy = json.loads((ROOT / "docs" / "iam-policy-history.json").read_text())
    assert {r for statement in policy["Statement"] for r in statement["Resource"]} == {
        f"OBS:*:*:bucket:{BUCKET}",
        f"OBS:*:*:object:{BUCKET}/*",
    }


def test_every_trace_is_a_real_workspace_trace_of_the_operation_it_names() -> None:
    workspace = DEFINITIONS["services"]["Workspace"]
    for trace in TRACES:
        cts = workspace[trace.operation]["cts"]
        assert cts == {"service_type": SERVICE_TYPE, "resource_type": RESOURCE_TYPE, "trace_name": trace.name}
    real = {op["cts"]["trace_name"] for op in workspace.values() if op["cts"]}
    assert {t.name for t in TRACES} <= real
    assert cts_operations() == [f"Workspace:workspace:{';'.join(t.name for t in TRACES)}"]


def test_the_answers_the_function_reads_are_official_fields() -> None:
    """The function's own answer models name only fields of the official response models."""
    from sysprep_guard import models

    pairs = [
        (models.SysprepInfo, workspace_models.DesktopSysprepInfo),
        (models.SysprepAnswer, workspace_models.CheckSysprepInfoResponse),
        (models.Desktop, workspace_models.SimpleDesktopInfo),
        (models.Desktop, workspace_models.DesktopDetailInfo),
        (models.DesktopPage, workspace_models.ListDesktopsResponse),
        (models.DesktopPage, workspace_models.ListDesktopsDetailResponse),
        (models.JobEntities, workspace_models.JobEntities),
        (models.SubJob, workspace_models.JobDetailInfo),
        (models.Job, workspace_models.ShowJobResponse),
        (models.PublishAnswer, smn_models.PublishMessageResponse),
    ]
    ours_only = {"rejected"}  # DesktopPage's count of rows it left out: computed, never read from an answer
    for ours, official in pairs:
        fields = set(ours.model_fields) - ours_only
        assert fields <= set(official.attribute_map.values()), (ours.__name__, official.__name__)


def test_a_renamed_field_is_caught() -> None:
    """The checks can fail: a field renamed on either side is reported."""
    package = workspace_models
    assert list(lost_fields({"desktopIds": ["x"]}, "CheckSysprepInfoRequestBody", package)) == [
        "desktopIds: not a field of CheckSysprepInfoRequestBody"
    ]
    listed = {"total_count": 1, "desktops": [{"desktop_id": "x", "taskStatus": "spawning"}]}
    assert list(lost_fields(listed, "ListDesktopsResponse", package)) == [
        "desktops[0].taskStatus: not a field of SimpleDesktopInfo"
    ]
    with pytest.raises((SdkException, Warning, TypeError, ValueError)):
        deserialise({"total_count": "many"}, "ListDesktopsResponse", package)
