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
    FuncCode,
    TriggerEventDataRequestBody,
)

from conftest import EVENTS, PROJECT, REGION, TOPIC
from devkit.template import RUNTIMES, Template, TemplateError, load_template, serialise_user_data, trigger_name
from sysprep_guard.events import CREATE_DESKTOP_TRACES
from sysprep_guard.settings import KEYS, load_settings

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
    assert template.user_data["SMN_TOPIC_URN"] == TOPIC and template.user_data["WORKSPACE_ENDPOINT"] == ""
    assert [t["trigger_type_code"] for t in template.triggers] == ["TIMER", "CTS", "EVENTGRID"]
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


@pytest.mark.parametrize("index", [0, 1, 2])
def test_each_trigger_is_a_create_function_trigger_body(index: int) -> None:
    trigger = load().triggers[index]
    assert set(trigger) <= set(CreateFunctionTriggerRequestBody.openapi_types)
    assert set(trigger["event_data"]) <= set(TriggerEventDataRequestBody.openapi_types)
    model = CreateFunctionTriggerRequestBody(
        trigger_type_code=trigger["trigger_type_code"],
        trigger_status=trigger["trigger_status"],
        event_data=TriggerEventDataRequestBody(**trigger["event_data"]),
    )
    assert model.to_dict()["event_data"] == {
        **{k: None for k in TriggerEventDataRequestBody.openapi_types},
        **trigger["event_data"],
    }
    assert trigger["trigger_status"] in doc(CreateFunctionTriggerRequestBody, "trigger_status")


@pytest.mark.parametrize("index", [0, 1, 2])
def test_each_event_data_field_is_documented_for_its_trigger_type(index: int) -> None:
    trigger = load().triggers[index]
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


def test_cts_operations_match_the_traces_the_handler_acts_on() -> None:
    operations = by_type(load(), "CTS")["event_data"]["operations"]
    parts = [op.split(":") for op in operations]
    assert all(len(p) == 3 for p in parts)
    assert {(service, resource) for service, resource, _ in parts} == {("Workspace", "desktops")}
    names = [trace.lower() for _, _, trace in parts]
    assert set(names) <= CREATE_DESKTOP_TRACES, "every subscribed trace is one the handler checks"
    assert set(names) >= CREATE_DESKTOP_TRACES, "every trace the handler checks is subscribed"
    assert len(names) == len(set(names))
    sample = json.loads((EVENTS / "cts-resource-id.json").read_text())["cts"]
    assert f"{sample['service_type']}:{sample['resource_type']}:{sample['trace_name']}" in operations


def test_eventgrid_subscribes_to_workspace_cloudtrace_events() -> None:
    data = by_type(load(), "EVENTGRID")["event_data"]
    sample = json.loads((EVENTS / "eventgrid.json").read_text())
    assert data["source_name"] == sample["source"]
    assert sample["type"] in data["event_types"]
    assert all(t.startswith("WORKSPACE:CloudTrace:") for t in data["event_types"])
    assert data["channel_id"] == "fake-channel-test-only"


def test_trigger_names_are_stable_and_distinct() -> None:
    names = [(t["trigger_type_code"], trigger_name(t)) for t in raw()["triggers"]]
    assert all(name and "${" not in name for _, name in names)
    assert len(set(names)) == len(names)


# Against docs/template.schema.json.
def test_the_template_as_written_fits_the_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    VALIDATOR.validate(raw())


def test_the_filled_template_fits_the_schema() -> None:
    template = load()
    document = {"parameters": raw()["parameters"], "function": template.function, "triggers": template.triggers}
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
    ("triggers.2.event_data.event_type", "x", "event_type: unknown key"),
    ("triggers.0.trigger_status", "PAUSED", "trigger_status"),
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
    for name in ("PROJECT_ID", "AGENCY", "SMN_TOPIC_URN", "EVENTGRID_CHANNEL_ID"):
        assert name in message
    assert "--param NAME=VALUE" in message and "environment variable" in message
    assert "Name of the IAM agency" in message
    assert "REGION:" not in message


def test_without_require_params_missing_ones_are_left_empty_and_listed() -> None:
    template = load_template(TEMPLATE, params={"REGION": REGION, "PROJECT_ID": PROJECT}, require_params=False)
    assert set(template.missing) == {"AGENCY", "SMN_TOPIC_URN", "EVENTGRID_CHANNEL_ID"}
    assert template.function["xrole"] == "" and template.user_data["SMN_TOPIC_URN"] == ""
    assert template.user_data["REGION"] == REGION


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
