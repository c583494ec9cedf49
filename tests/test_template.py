"""template.yml against the official FunctionGraph request models, the JSON schema, and the code that reads it."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from huaweicloudsdkfunctiongraph.v2.model import (
    CreateFunctionRequestBody,
    CreateFunctionTriggerRequestBody,
    FuncAsyncDestinationConfig,
    FuncCode,
    FuncDestinationConfig,
    TriggerEventDataRequestBody,
    UpdateFunctionAsyncInvokeConfigRequestBody,
)

from conftest import EVENTS, PROJECT, REGION, TOPIC
from devkit.template import (
    DISABLEABLE_TRIGGERS,
    RUNTIMES,
    Template,
    TemplateError,
    load_template,
    serialise_user_data,
    trigger_name,
)
from sysprep_guard.settings import KEYS, load_settings
from sysprep_guard.traces import RESOURCE_TYPE, SERVICE_TYPE, TRACES, cts_operations

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yml"
SCHEMA = json.loads((ROOT / "docs" / "template.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
# Obviously fake account values.
PARAMS = {
    "REGION": REGION,
    "PROJECT_ID": PROJECT,
    "AGENCY": "fake-agency-test-only",
    "SMN_TOPIC_URN": TOPIC,
    "EVENTGRID_CHANNEL_ID": "fake-channel-test-only",
}


def raw() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def write(tmp_path: Path, document: dict[str, Any] | str) -> Path:
    path = tmp_path / "template.yml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False))
    return path


def load(path: Path = TEMPLATE, **params: str) -> Template:
    return load_template(path, params={**PARAMS, **params}, environ={})


# Every trigger the template can deploy: (CREATION_TRIGGER, trigger type).
VARIANTS = [("CTS", "TIMER"), ("CTS", "CTS"), ("EVENTGRID", "EVENTGRID")]


def by_type(template: Template, type_code: str) -> dict[str, Any]:
    (trigger,) = [t for t in template.triggers if t["trigger_type_code"] == type_code]
    return trigger


def doc(model: type, field: str) -> str:
    return getattr(model, field).__doc__ or ""


# The template as written.
def test_the_template_loads_with_its_parameters_filled() -> None:
    template = load()
    assert (template.runtime, template.python_version) == ("Python3.10", "3.10")
    function = template.function
    assert (function["handler"], function["memory_size"], function["timeout"]) == ("index.handler", 256, 900)
    assert (function["code_type"], function["xrole"]) == ("zip", "fake-agency-test-only")
    assert template.user_data["SMN_TOPIC_URN"] == TOPIC and template.user_data["ENDPOINTS"] == ""
    assert [t["trigger_type_code"] for t in template.triggers] == ["TIMER", "CTS"]
    assert template.missing == ()


def test_user_data_declares_exactly_the_keys_the_code_reads() -> None:
    assert set(raw()["function"]["user_data"]) == set(KEYS)
    assert set(load().user_data) == set(KEYS)


def test_the_filled_user_data_starts_the_function() -> None:
    settings = load_settings(load().user_data.get)
    assert (settings.region, settings.project_id, settings.smn_topic_urn) == (REGION, PROJECT, TOPIC)
    assert settings.workspace_endpoint == f"https://workspace.{REGION}.myhuaweicloud.com"
    assert settings.job_wait_seconds == 600 and settings.dry_run is False


def test_nothing_account_specific_is_written_in_the_template() -> None:
    text = TEMPLATE.read_text()
    assert not re.search(r"\b[0-9a-f]{32}\b", text), "a project id belongs in a parameter"
    assert not re.search(r"urn:smn:[a-z]", text), "a topic URN belongs in a parameter"
    document = raw()
    for name in ("REGION", "PROJECT_ID", "AGENCY", "SMN_TOPIC_URN", "EVENTGRID_CHANNEL_ID"):
        assert "default" not in document["parameters"][name], f"{name} must come from the operator"
    assert document["function"]["xrole"] == "${AGENCY}"


def test_the_handler_named_by_the_template_exists() -> None:
    module, function = load().function["handler"].split(".")
    source = (ROOT / "handler" / f"{module}.py").read_text()
    assert f"def {function}(event" in source


# Against the official request models of huaweicloudsdkfunctiongraph.
def test_function_fields_are_create_function_fields() -> None:
    body = load().function_body()
    assert set(body) <= set(CreateFunctionRequestBody.openapi_types)
    model = CreateFunctionRequestBody(**body, func_code=FuncCode(file="UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="))
    sent = model.to_dict()
    assert {k: sent[k] for k in body} == body
    assert isinstance(body["user_data"], str) and json.loads(body["user_data"])["REGION"] == REGION
    assert body["user_data"] == serialise_user_data(load().user_data)


def test_function_values_are_ones_the_model_documents() -> None:
    function = load().function
    assert f"{function['runtime']}:" in doc(CreateFunctionRequestBody, "runtime")
    assert f"{function['code_type']}:" in doc(CreateFunctionRequestBody, "code_type")
    assert str(function["memory_size"]) in doc(CreateFunctionRequestBody, "memory_size")
    assert "3～259200" in doc(CreateFunctionRequestBody, "timeout") and 3 <= function["timeout"] <= 900


def test_every_runtime_the_loader_accepts_is_python() -> None:
    documented = doc(CreateFunctionRequestBody, "runtime")
    assert all(r.startswith("Python3.") for r in RUNTIMES)
    # Python3.12 is in FunctionGraph's console and REFERENCE.md, not yet in the 3.1.219 model's text.
    assert {"Python3.9", "Python3.10"} <= {r for r in RUNTIMES if f"{r}:" in documented}


@pytest.mark.parametrize(("choice", "type_code"), VARIANTS)
def test_each_trigger_is_a_create_function_trigger_body(choice: str, type_code: str) -> None:
    trigger = by_type(load(CREATION_TRIGGER=choice), type_code)
    assert set(trigger) <= set(CreateFunctionTriggerRequestBody.openapi_types)
    assert set(trigger["event_data"]) <= set(TriggerEventDataRequestBody.openapi_types)
    model = CreateFunctionTriggerRequestBody(
        trigger_type_code=trigger["trigger_type_code"],
        trigger_status=trigger.get("trigger_status"),
        event_data=TriggerEventDataRequestBody(**trigger["event_data"]),
    )
    sent = model.to_dict()
    assert sent["event_data"] == {
        **{k: None for k in TriggerEventDataRequestBody.openapi_types},
        **trigger["event_data"],
    }
    assert {k: v for k, v in sent.items() if v is not None and k != "event_data"} == {
        k: v for k, v in trigger.items() if k != "event_data"
    }
    if "trigger_status" in trigger:
        assert trigger["trigger_status"] in doc(CreateFunctionTriggerRequestBody, "trigger_status")


def test_no_trigger_declares_a_status_its_type_cannot_have() -> None:
    for trigger in raw()["triggers"]:
        if trigger["trigger_type_code"] not in DISABLEABLE_TRIGGERS:
            assert trigger.get("trigger_status", "ACTIVE") == "ACTIVE", trigger_name(trigger)
    for choice, type_code in VARIANTS:
        if type_code not in DISABLEABLE_TRIGGERS:
            assert "trigger_status" not in by_type(load(CREATION_TRIGGER=choice), type_code)


@pytest.mark.parametrize(("choice", "type_code"), VARIANTS)
def test_each_event_data_field_is_documented_for_its_trigger_type(choice: str, type_code: str) -> None:
    trigger = by_type(load(CREATION_TRIGGER=choice), type_code)
    for field in trigger["event_data"]:
        assert f"{trigger['trigger_type_code']}触发器" in doc(TriggerEventDataRequestBody, field), field


def test_timer_and_cts_are_documented_trigger_types() -> None:
    documented = doc(CreateFunctionTriggerRequestBody, "trigger_type_code")
    assert "- TIMER:" in documented and "- CTS:" in documented
    # EVENTGRID is in the API reference's enumeration; the model names it beside its event_data fields.
    assert "EVENTGRID" in doc(TriggerEventDataRequestBody, "channel_id")


def test_the_timer_runs_a_nightly_cron_sweep() -> None:
    data = by_type(load(), "TIMER")["event_data"]
    assert data["schedule_type"] in doc(TriggerEventDataRequestBody, "schedule_type")
    assert data["schedule_type"] == "Cron"
    seconds, minutes, hours, day, month, weekday = data["schedule"].split()
    assert (seconds, minutes, hours, day, month, weekday) == ("0", "0", "2", "*", "*", "?")
    assert data["name"] == json.loads((EVENTS / "timer.json").read_text())["trigger_name"]


def test_cts_operations_are_the_traces_the_handler_acts_on() -> None:
    operations = by_type(load(), "CTS")["event_data"]["operations"]
    assert operations == cts_operations()
    (entry,) = operations  # one entry per service and resource type: Workspace records all as one
    service, resource, names = entry.split(":")
    assert (service, resource) == (SERVICE_TYPE, RESOURCE_TYPE) == ("Workspace", "workspace")
    assert names.split(";") == [trace.name for trace in TRACES]
    assert 1 <= len(names.split(";")) <= 10
    assert "operations: ${WORKSPACE_CTS_OPERATIONS}" in TEMPLATE.read_text(), "one list, in the handler's code"
    assert "handler/sysprep_guard/traces.py" in TEMPLATE.read_text(), "the template says where it lives"


def test_the_operations_follow_the_handler_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import sysprep_guard.traces as traces

    monkeypatch.setattr(traces, "cts_operations", lambda: ["Workspace:workspace:createDesktops;rebuildDesktopPool"])
    assert by_type(load(), "CTS")["event_data"]["operations"] == [
        "Workspace:workspace:createDesktops;rebuildDesktopPool"
    ]
    monkeypatch.setattr(
        traces, "cts_operations", lambda: ["Workspace:workspace:" + ";".join(f"op{i}" for i in range(11))]
    )
    with pytest.raises(TemplateError, match="11 operations for service Workspace; a CTS trigger takes at most 10"):
        load()


def test_eventgrid_subscribes_to_workspace_cloudtrace_events() -> None:
    data = by_type(load(CREATION_TRIGGER="EVENTGRID"), "EVENTGRID")["event_data"]
    # Unverified strings in one form; the function accepts the type in either case, and so does this check.
    assert data["source_name"] == "HC.Workspace"
    assert data["event_types"] == ["Workspace:CloudTrace:ApiCall", "Workspace:CloudTrace:ConsoleAction"]
    sample = json.loads((EVENTS / "eventgrid.json").read_text())
    assert sample["source"].lower() == data["source_name"].lower()
    assert sample["type"].lower() in {t.lower() for t in data["event_types"]}
    assert data["channel_id"] == "fake-channel-test-only"
    assert "UNVERIFIED" in TEMPLATE.read_text()


# Which creation trigger is deployed.
@pytest.mark.parametrize(
    ("choice", "deployed"), [("CTS", ["TIMER", "CTS"]), ("EVENTGRID", ["TIMER", "EVENTGRID"]), ("NONE", ["TIMER"])]
)
def test_creation_trigger_deploys_exactly_the_one_chosen(choice: str, deployed: list[str]) -> None:
    template = load(CREATION_TRIGGER=choice)
    assert [t["trigger_type_code"] for t in template.triggers] == deployed
    assert all("when" not in t for t in template.triggers), "when: is the template's own, never sent"


def test_creation_trigger_defaults_to_cts() -> None:
    assert raw()["parameters"]["CREATION_TRIGGER"]["default"] == "CTS"
    assert "CTS_TRIGGER_STATUS" not in raw()["parameters"] and "EVENTGRID_TRIGGER_STATUS" not in raw()["parameters"]


def test_a_creation_trigger_it_does_not_know_is_refused() -> None:
    with pytest.raises(
        TemplateError, match=r"parameter CREATION_TRIGGER: 'cts' \(the value given\) is not allowed; use one"
    ):
        load(CREATION_TRIGGER="cts")
    with pytest.raises(TemplateError, match="use one of CTS, EVENTGRID, NONE"):
        load_template(TEMPLATE, params=PARAMS, environ={"CREATION_TRIGGER": "BOTH"})


def test_the_eventgrid_channel_is_required_only_for_the_eventgrid_trigger() -> None:
    without = {k: v for k, v in PARAMS.items() if k != "EVENTGRID_CHANNEL_ID"}
    for choice in ("CTS", "NONE"):
        template = load_template(TEMPLATE, params={**without, "CREATION_TRIGGER": choice}, environ={})
        assert template.missing == () and template.values["EVENTGRID_CHANNEL_ID"] == ""
    with pytest.raises(TemplateError, match="missing parameter EVENTGRID_CHANNEL_ID;"):
        load_template(TEMPLATE, params={**without, "CREATION_TRIGGER": "EVENTGRID"}, environ={})


def test_a_mistake_in_a_trigger_not_deployed_is_still_refused(tmp_path: Path) -> None:
    document = _mutate("triggers.2.event_data.source", "HC.Workspace")
    with pytest.raises(TemplateError, match=r"triggers\[2\].event_data.source: unknown key"):
        load(write(tmp_path, document), CREATION_TRIGGER="CTS")


def test_a_when_on_a_value_the_parameter_cannot_take_is_refused(tmp_path: Path) -> None:
    document = _mutate("triggers.1.when", {"CREATION_TRIGGER": "CST"})
    with pytest.raises(TemplateError, match=r"triggers\[1\].when.CREATION_TRIGGER: 'CST' is not a value"):
        load(write(tmp_path, document))


def test_a_when_may_list_several_values(tmp_path: Path) -> None:
    document = _mutate("triggers.1.when", {"CREATION_TRIGGER": ["CTS", "NONE"]})
    path = write(tmp_path, document)
    assert [t["trigger_type_code"] for t in load(path, CREATION_TRIGGER="NONE").triggers] == ["TIMER", "CTS"]
    assert [t["trigger_type_code"] for t in load(path, CREATION_TRIGGER="EVENTGRID").triggers] == ["TIMER", "EVENTGRID"]


# Statuses FunctionGraph cannot give a trigger.
@pytest.mark.parametrize(
    ("index", "kind", "name"), [(1, "CTS", "workspace-desktop-created"), (2, "EVENTGRID", "workspace-cloudtrace")]
)
def test_a_disabled_cts_or_eventgrid_trigger_is_refused_naming_it_and_why(
    tmp_path: Path, index: int, kind: str, name: str
) -> None:
    path = write(tmp_path, _mutate(f"triggers.{index}.trigger_status", "DISABLED"))
    with pytest.raises(TemplateError) as err:
        load(path, CREATION_TRIGGER="NONE")  # refused even where that trigger would not be deployed
    message = str(err.value)
    assert f"triggers[{index}] ({kind} trigger '{name}'): trigger_status DISABLED" in message
    assert f"FunctionGraph keeps {kind} triggers ACTIVE" in message and "only TIMER, DDS, LTS, KAFKA and DMS" in message
    assert load(write(tmp_path, _mutate(f"triggers.{index}.trigger_status", "ACTIVE"))).triggers


def test_a_disabled_timer_is_allowed(tmp_path: Path) -> None:
    template = load(write(tmp_path, _mutate("triggers.0.trigger_status", "DISABLED")))
    assert by_type(template, "TIMER")["trigger_status"] == "DISABLED"


# CTS operations.
@pytest.mark.parametrize(
    ("operations", "message"),
    [
        (
            ["Workspace:workspace:a;b", "Workspace:workspace:c"],
            "second entry for Workspace:workspace; join the operations",
        ),
        (["Workspace:workspace:a;a"], "names an operation twice"),
        (["Workspace:workspace:" + ";".join(f"op{i}" for i in range(11))], "11 operations for service Workspace"),
        (
            [
                "Workspace:workspace:" + ";".join(f"a{i}" for i in range(6)),
                "Workspace:desktops:" + ";".join(f"b{i}" for i in range(5)),
            ],
            "11 operations for service Workspace",
        ),
        ([f"Service{chr(65 + i)}:r:op" for i in range(11)], "11 services; a CTS trigger takes at most 10"),
        (["Workspace:workspace:createDesktops;"], "is not Service:resourceType:op1;op2"),
    ],
)
def test_cts_operations_are_checked_as_functiongraph_takes_them(
    tmp_path: Path, operations: list[str], message: str
) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)):
        load(write(tmp_path, _mutate("triggers.1.event_data.operations", operations)))


def test_the_built_in_is_a_whole_value(tmp_path: Path) -> None:
    with pytest.raises(
        TemplateError, match=r"\$\{WORKSPACE_CTS_OPERATIONS\} is a list \(cts_operations\(\) in handler/"
    ):
        load(write(tmp_path, _mutate("triggers.1.event_data.operations", ["${WORKSPACE_CTS_OPERATIONS}"])))
    document = _mutate("parameters.WORKSPACE_CTS_OPERATIONS", {"description": "x", "default": "y"})
    with pytest.raises(TemplateError, match=r"parameters\.WORKSPACE_CTS_OPERATIONS: .* is built in"):
        load(write(tmp_path, document))


# The asynchronous invocation configuration.
def test_async_invoke_is_an_update_function_async_invoke_config_body() -> None:
    body = load().async_invoke_body()
    assert body is not None
    assert set(body) <= set(UpdateFunctionAsyncInvokeConfigRequestBody.openapi_types)
    on_failure = body["destination_config"]["on_failure"]
    model = UpdateFunctionAsyncInvokeConfigRequestBody(
        max_async_retry_attempts=body["max_async_retry_attempts"],
        max_async_event_age_in_seconds=body["max_async_event_age_in_seconds"],
        destination_config=FuncAsyncDestinationConfig(on_failure=FuncDestinationConfig(**on_failure)),
    )
    sent = model.to_dict()
    assert {k: v for k, v in sent.items() if v is not None} == {
        **body,
        "destination_config": {"on_success": None, "on_failure": on_failure},
    }
    assert on_failure["destination"] == "SMN" and f"- {on_failure['destination']}：" in doc(
        FuncDestinationConfig, "destination"
    )
    assert isinstance(on_failure["param"], str) and json.loads(on_failure["param"]) == {"topic_urn": TOPIC}
    assert "topic_urn" in doc(FuncDestinationConfig, "param")


def test_async_invoke_values_are_inside_the_documented_ranges() -> None:
    body = load().async_invoke_body()
    assert body is not None
    assert body["max_async_retry_attempts"] == 3
    assert "取值范围[0，3]" in doc(UpdateFunctionAsyncInvokeConfigRequestBody, "max_async_retry_attempts")
    assert body["max_async_event_age_in_seconds"] == 21600
    assert "取值范围[1，86400]" in doc(UpdateFunctionAsyncInvokeConfigRequestBody, "max_async_event_age_in_seconds")
    assert 60 <= body["max_async_event_age_in_seconds"] <= 86400


def test_the_failure_topic_defaults_to_the_findings_topic_and_can_be_another() -> None:
    assert load().values["FAILURE_TOPIC_URN"] == TOPIC
    other = f"urn:smn:{REGION}:{PROJECT}:sysprep-failures"
    template = load(FAILURE_TOPIC_URN=other)
    assert template.async_invoke is not None
    assert template.async_invoke["destination_config"]["on_failure"]["param"] == {"topic_urn": other}
    assert template.user_data["SMN_TOPIC_URN"] == TOPIC


def test_retries_are_a_parameter_from_0_to_3() -> None:
    template = load(ASYNC_RETRY_ATTEMPTS="0")
    assert template.async_invoke is not None and template.async_invoke["max_async_retry_attempts"] == 0
    with pytest.raises(TemplateError, match=r"parameter ASYNC_RETRY_ATTEMPTS: '4' \(the value given\) is not allowed"):
        load(ASYNC_RETRY_ATTEMPTS="4")


def test_a_bad_failure_topic_is_refused() -> None:
    with pytest.raises(TemplateError, match=r"param\.topic_urn 'sysprep-failures' is not urn:smn:"):
        load(FAILURE_TOPIC_URN="sysprep-failures")


def test_trigger_names_are_stable_and_distinct() -> None:
    names = [(t["trigger_type_code"], trigger_name(t)) for t in raw()["triggers"]]
    assert all(name and "${" not in name for _, name in names)
    assert len(set(names)) == len(names)


# Against docs/template.schema.json.
def test_the_template_as_written_fits_the_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    VALIDATOR.validate(raw())


@pytest.mark.parametrize("choice", ["CTS", "EVENTGRID", "NONE"])
def test_the_filled_template_fits_the_schema(choice: str) -> None:
    template = load(CREATION_TRIGGER=choice)
    document = {
        "parameters": raw()["parameters"],
        "function": template.function,
        "triggers": template.triggers,
        "async_invoke": template.async_invoke,
    }
    VALIDATOR.validate(document)


def _mutate(path: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(raw())
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value
    return document


BROKEN = [
    ("function.runtime", "Python3.8", "not a supported runtime"),
    ("function.memory_size", 300, "memory_size"),
    ("function.code_type", "jar", "function.code_type"),
    ("function.func_vpc", {"vpc_id": "x"}, "function.func_vpc: unknown key"),
    ("triggers.0.trigger_type_code", "APIG", "trigger_type_code 'APIG' is not supported"),
    ("triggers.0.event_data.schedule_type", "Weekly", "schedule_type"),
    ("triggers.0.event_data.schedule", "every night", "Cron expression"),
    ("triggers.1.event_data.operations", ["createDesktop"], "operations"),
    ("triggers.1.event_data.operations", ["Workspace:workspace:" + ";".join("abcdefghijk")], "11 operations"),
    ("triggers.1.event_data.operations", "${OPERATIONS}", "operations"),
    ("triggers.2.event_data.event_type", "x", "event_type: unknown key"),
    ("triggers.0.trigger_status", "PAUSED", "trigger_status"),
    ("triggers.1.trigger_status", "DISABLED", "FunctionGraph keeps CTS triggers ACTIVE"),
    ("triggers.2.trigger_status", "DISABLED", "FunctionGraph keeps EVENTGRID triggers ACTIVE"),
    ("triggers.1.when", {"creation_trigger": "CTS"}, "parameters: declares no creation_trigger"),
    ("parameters.CREATION_TRIGGER.allowed", [], "parameters.CREATION_TRIGGER.allowed"),
    ("async_invoke.max_async_retry_attempts", 4, "max_async_retry_attempts"),
    ("async_invoke.max_async_event_age_in_seconds", 30, "max_async_event_age_in_seconds"),
    ("async_invoke.destination_config.on_failure.destination", "EMAIL", "destination"),
    ("async_invoke.destination_config.on_failure.param", {"topic": "x"}, "param.topic_urn required"),
    ("async_invoke.on_failure", {"destination": "SMN"}, "async_invoke.on_failure: unknown key"),
    ("flags", {"x": 1}, "unknown top-level key flags"),
]


@pytest.mark.parametrize(("path", "value", "message"), BROKEN)
def test_the_loader_and_the_schema_refuse_the_same_mistakes(
    tmp_path: Path, path: str, value: Any, message: str
) -> None:
    document = _mutate(path, value)
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(document)
    with pytest.raises(TemplateError) as err:
        load(write(tmp_path, document))
    assert message in str(err.value)
    assert str(tmp_path / "template.yml") in str(err.value)


# Parameters.
def test_parameters_come_from_params_then_environ_then_default() -> None:
    environ = {**PARAMS, "REGION": "cn-north-4", "DRY_RUN": "true", "FUNCTION_NAME": "from-env"}
    template = load_template(TEMPLATE, params={"FUNCTION_NAME": "from-param"}, environ=environ)
    assert template.function["func_name"] == "from-param"
    assert template.user_data["REGION"] == "cn-north-4" and template.user_data["DRY_RUN"] == "true"
    assert template.user_data["JOB_WAIT_SECONDS"] == "600"
    assert template.values["FUNCTION_PACKAGE"] == "default"


def test_an_empty_value_counts_as_unset() -> None:
    template = load_template(TEMPLATE, params={**PARAMS, "DRY_RUN": " "}, environ={})
    assert template.user_data["DRY_RUN"] == "false"


def test_a_missing_parameter_is_named_with_its_description_and_how_to_set_it() -> None:
    with pytest.raises(TemplateError) as err:
        load_template(TEMPLATE, params={"REGION": REGION}, environ={})
    message = str(err.value)
    for name in ("PROJECT_ID", "AGENCY", "SMN_TOPIC_URN"):
        assert name in message
    assert "--param NAME=VALUE" in message and "environment variable" in message
    assert "Name of the IAM agency" in message
    assert "REGION:" not in message
    assert "EVENTGRID_CHANNEL_ID" not in message, "the default CTS trigger does not use it"


def test_without_require_params_missing_ones_are_left_empty_and_listed() -> None:
    template = load_template(TEMPLATE, params={"REGION": REGION, "PROJECT_ID": PROJECT}, require_params=False)
    assert set(template.missing) == {"AGENCY", "SMN_TOPIC_URN"}
    assert template.function["xrole"] == "" and template.user_data["SMN_TOPIC_URN"] == ""
    assert template.user_data["REGION"] == REGION
    # A default that refers to a missing parameter is empty too, never a leftover ${...}.
    assert template.values["FAILURE_TOPIC_URN"] == ""
    assert template.async_invoke is not None
    assert template.async_invoke["destination_config"]["on_failure"]["param"] == {"topic_urn": ""}


def test_a_default_may_refer_to_another_parameter(tmp_path: Path) -> None:
    document = _mutate("parameters.FUNCTION_NAME.default", "${FUNCTION_PACKAGE}-guard")
    template = load(write(tmp_path, document), FUNCTION_PACKAGE="ops")
    assert template.function["func_name"] == "ops-guard" and template.values["FUNCTION_NAME"] == "ops-guard"
    assert load(write(tmp_path, document), FUNCTION_NAME="given").function["func_name"] == "given"


def test_a_default_referring_to_a_missing_parameter_makes_that_one_required() -> None:
    params = {k: v for k, v in PARAMS.items() if k != "SMN_TOPIC_URN"}
    with pytest.raises(TemplateError, match="missing parameter SMN_TOPIC_URN;"):
        load_template(TEMPLATE, params={**params, "DRY_RUN": "true"}, environ={})


def test_defaults_that_refer_in_a_circle_are_refused(tmp_path: Path) -> None:
    document = _mutate("parameters.FUNCTION_NAME.default", "${FUNCTION_PACKAGE}")
    document["parameters"]["FUNCTION_PACKAGE"]["default"] = "${FUNCTION_NAME}"
    with pytest.raises(
        TemplateError, match=r"the defaults refer in a circle \(\$\{FUNCTION_NAME\} -> \$\{FUNCTION_PACKAGE\}"
    ):
        load(write(tmp_path, document))


def test_a_default_referring_to_an_undeclared_parameter_is_refused(tmp_path: Path) -> None:
    document = _mutate("parameters.FAILURE_TOPIC_URN.default", "${ALERT_TOPIC}")
    with pytest.raises(TemplateError, match=r"parameters.FAILURE_TOPIC_URN.default: uses \$\{ALERT_TOPIC\}, which"):
        load(write(tmp_path, document))


def test_a_default_outside_allowed_is_refused(tmp_path: Path) -> None:
    document = _mutate("parameters.CREATION_TRIGGER.default", "BOTH")
    with pytest.raises(TemplateError, match=r"parameter CREATION_TRIGGER: 'BOTH' \(its default\) is not allowed"):
        load(write(tmp_path, document))


def test_a_value_is_taken_as_it_is_even_with_a_reference_in_it() -> None:
    template = load(SWEEP_SCHEDULE="0 0 2 * * ?", FUNCTION_PACKAGE="default", DRY_RUN="${AGENCY}")
    assert template.user_data["DRY_RUN"] == "${AGENCY}"


def test_an_unknown_parameter_is_refused() -> None:
    with pytest.raises(TemplateError, match="no parameter named PROJECTID"):
        load(PROJECTID="x")


def test_a_reference_to_an_undeclared_parameter_is_refused(tmp_path: Path) -> None:
    document = _mutate("function.description", "in ${ZONE}")
    with pytest.raises(TemplateError, match=r"function.description: uses \$\{ZONE\}, which parameters: does not"):
        load(write(tmp_path, document))


def test_a_parameter_needs_a_description(tmp_path: Path) -> None:
    document = _mutate("parameters.DRY_RUN", {"default": "false"})
    with pytest.raises(TemplateError, match=r"parameters\.DRY_RUN\.description: required"):
        load(write(tmp_path, document))


def test_an_unquoted_user_data_value_is_refused(tmp_path: Path) -> None:
    document = _mutate("function.user_data.DRY_RUN", False)
    with pytest.raises(TemplateError, match=r"function.user_data.DRY_RUN: expected a string, got False; quote it"):
        load(write(tmp_path, document))


def test_a_user_data_key_the_function_does_not_read_is_refused(tmp_path: Path) -> None:
    document = _mutate("function.user_data.REGOIN", "x")
    with pytest.raises(TemplateError, match="reads no key REGOIN"):
        load(write(tmp_path, document))


def test_two_triggers_with_one_name_are_refused(tmp_path: Path) -> None:
    document = copy.deepcopy(raw())
    document["triggers"].append(copy.deepcopy(document["triggers"][0]))
    with pytest.raises(TemplateError, match="a second TIMER trigger named 'nightly-sysprep-sweep'"):
        load(write(tmp_path, document))


# The file itself.
def test_bad_yaml_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "parameters:\n  REGION:\n    description: [unclosed\nfunction: {}\n")
    with pytest.raises(TemplateError, match=r"template.yml: not valid YAML at line \d+, column \d+"):
        load(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"nowhere\.yml: no such file"):
        load(tmp_path / "nowhere.yml")


def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="expected a mapping"):
        load(write(tmp_path, "- just\n- a list\n"))
