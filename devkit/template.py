"""template.yml: read, fill its ${NAME} parameters, validate, and hand out the FunctionGraph request bodies.

    template = load_template("template.yml", params={"REGION": "ap-southeast-1", ...})
    template.function        # CreateFunction fields, user_data as a mapping
    template.triggers        # CreateFunctionTrigger bodies: those whose `when:` holds, without `when:`
    template.async_invoke    # UpdateFunctionAsyncInvokeConfig fields (param as a mapping), or None
    template.user_data       # {"REGION": "...", ...}: what the function reads
    template.python_version  # "3.10"

Beyond the API's fields the template has three things of its own, all resolved here:
- a parameter may declare `allowed: [...]` values, and its default may refer to other parameters (${OTHER});
- a trigger may carry `when: {PARAMETER: VALUE}` (or a list of values): it is deployed only when each holds;
- ${WORKSPACE_CTS_OPERATIONS}, a built-in, is the CTS operations list of the handler's code
  (sysprep_guard.traces.cts_operations), written as the whole value of a CTS trigger's operations.

Every problem is one TemplateError naming the file and what to fix in it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

RUNTIMES = ("Python3.9", "Python3.10", "Python3.12")
MEMORY_SIZES = (128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096)
USER_DATA_MAX_ENTRIES = 20
USER_DATA_MAX_BYTES = 4096
# CreateFunctionTrigger: only these trigger types can be created or set DISABLED; the others (CTS and EVENTGRID
# among them) are always ACTIVE.
DISABLEABLE_TRIGGERS = ("TIMER", "DDS", "LTS", "KAFKA", "DMS")
CTS_MAX_SERVICES = 10  # a CTS trigger's operations: at most 10 services ...
CTS_MAX_OPERATIONS = 10  # ... with at most 10 operations each
# UpdateFunctionAsyncInvokeConfig. The request model documents max_async_event_age_in_seconds as [1, 86400] and
# ShowFunctionAsyncInvokeConfig's as [60, 86400]: the template stays inside both.
ASYNC_EVENT_AGE = (60, 86400)
ASYNC_RETRY_ATTEMPTS = (0, 3)
DESTINATIONS = {"SMN": "topic_urn", "OBS": "bucket", "DIS": "stream_name", "FunctionGraph": "func_urn"}

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_PARAMETER_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
_CRON_FIELDS = re.compile(r"^[0-9A-Za-z*?,/-]+$")
_CTS_ENTRY = re.compile(r"^([A-Za-z]+):([A-Za-z0-9_]+):([A-Za-z0-9_]+(?:;[A-Za-z0-9_]+)*)$")
_TOPIC_URN = r"^(urn:smn:[a-z0-9-]+:[0-9A-Za-z]+:[A-Za-z0-9_-]{1,255}|\$\{[A-Z][A-Z0-9_]*\})$"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ten times faster


class TemplateError(Exception):
    """The template cannot be used; the message says where and what to fix."""


def _workspace_cts_operations() -> list[str]:
    from sysprep_guard.traces import cts_operations  # handler/ on sys.path, as the scripts and tests put it

    return list(cts_operations())


# ${NAME}s the loader fills from the handler's code: each is a list, written as a whole value.
BUILTINS: dict[str, tuple[str, Callable[[], list[str]]]] = {
    "WORKSPACE_CTS_OPERATIONS": ("cts_operations() in handler/sysprep_guard/traces.py", _workspace_cts_operations),
}


# The models: the template as the FunctionGraph API takes it, with the checks the API documents.
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Parameter(_Strict):
    description: StrictStr = Field(min_length=1)
    default: StrictStr | None = None
    allowed: list[StrictStr] | None = Field(default=None, min_length=1)


class Function(_Strict):
    """CreateFunction's request body, the fields this project sets."""

    func_name: StrictStr = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_-]{0,58}[A-Za-z0-9])?$")
    package: StrictStr = Field(default="default", pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
    runtime: Literal["Python3.9", "Python3.10", "Python3.12"]
    handler: StrictStr = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
    memory_size: int
    timeout: int = Field(ge=3, le=259200)
    code_type: Literal["zip"]
    code_filename: StrictStr = Field(pattern=r"^[^/\\]+\.zip$")
    xrole: StrictStr = ""
    description: StrictStr = Field(default="", max_length=512)
    user_data: dict[StrictStr, StrictStr] = Field(default_factory=dict)

    @field_validator("memory_size")
    @classmethod
    def _memory(cls, value: int) -> int:
        if value not in MEMORY_SIZES:
            raise ValueError(f"must be one of {', '.join(map(str, MEMORY_SIZES))} (MB)")
        return value

    @field_validator("user_data")
    @classmethod
    def _user_data(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ValueError(f"key {key!r} is not a valid environment variable name")
        if len(value) > USER_DATA_MAX_ENTRIES:
            raise ValueError(f"{len(value)} entries, FunctionGraph takes at most {USER_DATA_MAX_ENTRIES}")
        size = len(serialise_user_data(value).encode())
        if size > USER_DATA_MAX_BYTES:
            longest = max(value, key=lambda k: len(value[k]))
            raise ValueError(
                f"{size} bytes once serialised, FunctionGraph takes at most {USER_DATA_MAX_BYTES}; the longest is "
                f"{longest} ({len(value[longest])} characters): TARGETS and EXEMPT_DESKTOP_IDS can name an OBS object "
                "instead (obs://bucket/key)"
            )
        return value


class TimerData(_Strict):
    name: StrictStr = Field(pattern=_NAME)
    schedule_type: Literal["Cron", "Rate"]
    schedule: StrictStr = Field(min_length=1)
    user_event: StrictStr | None = None

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        text = value.strip()
        if text.startswith("CRON_TZ="):
            text = text.partition(" ")[2].strip()
        if text.startswith("@every ") or re.match(r"^\d+[mhd]$", text):
            return value
        fields = text.split()
        if len(fields) not in (5, 6) or not all(_CRON_FIELDS.match(f) for f in fields):
            raise ValueError(
                "expected a Cron expression of 5 or 6 fields (seconds minutes hours day-of-month month "
                '[day-of-week]) such as "0 0 2 * * ?", "@every 1h", or a Rate such as "1d"'
            )
        return value


class CtsData(_Strict):
    name: StrictStr = Field(pattern=_NAME)
    operations: list[StrictStr] = Field(min_length=1, max_length=CTS_MAX_SERVICES * CTS_MAX_OPERATIONS)

    @field_validator("operations")
    @classmethod
    def _operations(cls, value: list[str]) -> list[str]:
        """One "Service:resourceType:op1;op2" entry per service and resource type; at most 10 services of 10."""
        entries: set[tuple[str, str]] = set()
        per_service: dict[str, int] = {}
        for i, entry in enumerate(value):
            match = _CTS_ENTRY.match(entry)
            if match is None:
                raise ValueError(
                    f"[{i}] {entry!r} is not Service:resourceType:op1;op2 "
                    "(e.g. Workspace:workspace:createDesktops;CreateDesktopOrder)"
                )
            service, resource, operations = match.groups()
            names = operations.split(";")
            if len(set(names)) != len(names):
                raise ValueError(f"[{i}] names an operation twice")
            if (service, resource) in entries:
                raise ValueError(
                    f"[{i}] is a second entry for {service}:{resource}; join the operations of one service and "
                    "resource type with ';' in one entry"
                )
            entries.add((service, resource))
            per_service[service] = per_service.get(service, 0) + len(names)
            if per_service[service] > CTS_MAX_OPERATIONS:
                raise ValueError(
                    f"{per_service[service]} operations for service {service}; a CTS trigger takes at most "
                    f"{CTS_MAX_OPERATIONS} per service"
                )
        if len(per_service) > CTS_MAX_SERVICES:
            raise ValueError(f"{len(per_service)} services; a CTS trigger takes at most {CTS_MAX_SERVICES}")
        return value


class EventGridData(_Strict):
    trigger_name: StrictStr = Field(pattern=_NAME)
    channel_id: StrictStr = Field(min_length=1)
    channel_name: StrictStr = Field(min_length=1)
    source_name: StrictStr = Field(min_length=1)
    event_types: list[StrictStr] = Field(min_length=1)
    agency: StrictStr | None = None


class _Trigger(_Strict):
    trigger_status: Literal["ACTIVE", "DISABLED"] | None = None  # left out of the body when not written
    event_type_code: StrictStr | None = None
    # Template-only: deployed when each PARAMETER has the value (or one of the values) given; never sent.
    when: dict[StrictStr, StrictStr | list[StrictStr]] | None = Field(default=None, exclude=True)


class TimerTrigger(_Trigger):
    trigger_type_code: Literal["TIMER"]
    event_data: TimerData


class CtsTrigger(_Trigger):
    trigger_type_code: Literal["CTS"]
    event_data: CtsData


class EventGridTrigger(_Trigger):
    trigger_type_code: Literal["EVENTGRID"]
    event_data: EventGridData


Trigger = Annotated[TimerTrigger | CtsTrigger | EventGridTrigger, Discriminator("trigger_type_code")]
TRIGGER_TYPES = ("TIMER", "CTS", "EVENTGRID")


class Destination(_Strict):
    """FuncDestinationConfig; param is written as a mapping and sent as the JSON string the API takes."""

    destination: Literal["SMN", "OBS", "DIS", "FunctionGraph"]
    param: dict[StrictStr, StrictStr | StrictInt]

    @model_validator(mode="after")
    def _param(self) -> Destination:
        key = DESTINATIONS[self.destination]
        if not isinstance(self.param.get(key), str) or not self.param[key]:
            raise ValueError(f"param.{key} required for destination {self.destination}")
        if self.destination == "SMN" and not re.match(_TOPIC_URN, str(self.param[key])):
            raise ValueError(f"param.topic_urn {self.param[key]!r} is not urn:smn:{{region}}:{{project_id}}:{{name}}")
        return self


class DestinationConfig(_Strict):
    on_success: Destination | None = None
    on_failure: Destination | None = None


class AsyncInvoke(_Strict):
    """UpdateFunctionAsyncInvokeConfig's request body, the fields this project sets."""

    max_async_retry_attempts: int = Field(ge=ASYNC_RETRY_ATTEMPTS[0], le=ASYNC_RETRY_ATTEMPTS[1])
    max_async_event_age_in_seconds: int = Field(ge=ASYNC_EVENT_AGE[0], le=ASYNC_EVENT_AGE[1])
    destination_config: DestinationConfig = Field(default_factory=DestinationConfig)


class Document(_Strict):
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    function: Function
    triggers: list[Trigger] = Field(default_factory=list)
    async_invoke: AsyncInvoke | None = None


@dataclass(frozen=True, eq=False)
class Template:
    path: Path
    parameters: dict[str, Parameter]  # as declared
    values: dict[str, str]  # what each parameter resolved to
    missing: tuple[str, ...]  # required parameters left empty (only with require_params=False)
    function: dict[str, Any]  # CreateFunction fields; user_data is a mapping
    triggers: list[dict[str, Any]]  # CreateFunctionTrigger bodies, those whose `when:` holds
    async_invoke: dict[str, Any] | None = None  # UpdateFunctionAsyncInvokeConfig fields; param is a mapping

    @property
    def user_data(self) -> dict[str, str]:
        return dict(self.function["user_data"])

    @property
    def runtime(self) -> str:
        return str(self.function["runtime"])

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("Python")

    def function_body(self) -> dict[str, Any]:
        """CreateFunction's body without the code: user_data as the JSON string the API takes."""
        body = dict(self.function)
        body["user_data"] = serialise_user_data(self.function["user_data"])
        return body

    def async_invoke_body(self) -> dict[str, Any] | None:
        """UpdateFunctionAsyncInvokeConfig's body: each destination's param as the JSON string the API takes."""
        if self.async_invoke is None:
            return None
        body = dict(self.async_invoke)
        body["destination_config"] = {
            kind: {**target, "param": serialise_param(target["param"])}
            for kind, target in self.async_invoke.get("destination_config", {}).items()
        }
        return body


def serialise_user_data(user_data: Mapping[str, str]) -> str:
    """The JSON string FunctionGraph stores; empty values are left out (to the function, empty means unset)."""
    return json.dumps({k: v for k, v in user_data.items() if v.strip()}, separators=(",", ":"), sort_keys=True)


def serialise_param(param: Mapping[str, Any]) -> str:
    """A destination's param as FuncDestinationConfig takes it: a JSON string, e.g. {"topic_urn":"urn:smn:..."}."""
    return json.dumps(dict(param), separators=(",", ":"), sort_keys=True)


def trigger_name(trigger: Mapping[str, Any]) -> str | None:
    """The name deploy matches a trigger by: event_data.name, or event_data.trigger_name for EVENTGRID."""
    data = trigger.get("event_data") or {}
    if not isinstance(data, Mapping):
        return None
    name = data.get("trigger_name" if trigger.get("trigger_type_code") == "EVENTGRID" else "name")
    return name if isinstance(name, str) and name else None


def load_template(
    path: str | os.PathLike[str] = "template.yml",
    params: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    require_params: bool = True,
) -> Template:
    """Read and validate the template; ${NAME} comes from params, then environ, then the declared default.

    A parameter is required only when what is deployed uses it (a trigger left out by `when:` does not). With
    require_params=False a required parameter with neither value nor default becomes "" and is listed in
    `.missing` (for a local run that does not need, say, the agency).
    """
    file = Path(path)
    raw = _read(file)
    declared = _parameters(file, raw)
    _check_references(file, raw, declared)
    values, unset, given = _resolve(file, declared, params or {}, os.environ if environ is None else environ)
    # An unset parameter keeps its ${NAME} through validation (only a value given can be wrong), then becomes "".
    body = _expand_builtins(file, {k: v for k, v in raw.items() if k != "parameters"})
    filled = _substitute(body, values)
    try:
        document = Document.model_validate(filled)
    except ValidationError as exc:
        raise TemplateError(f"{file}: " + "; ".join(_describe(error) for error in exc.errors())) from None
    _check_statuses(file, document)
    kept = [i for i, trigger in enumerate(document.triggers) if _holds(file, i, trigger.when, declared, values)]
    missing = _missing(raw, declared, given, unset, kept)
    if missing and require_params:
        lines = "\n".join(f"  {name}: {declared[name].description}" for name in missing)
        raise TemplateError(
            f"{file}: missing parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}; set "
            f"{'each' if len(missing) > 1 else 'it'} as an environment variable or with --param NAME=VALUE:\n{lines}"
        )
    triggers = [document.triggers[i] for i in kept]
    _check_unique_names(file, triggers, kept)
    _check_user_data_keys(file, document.function.user_data)
    blank = dict.fromkeys(unset, "")
    async_invoke = document.async_invoke
    return Template(
        path=file,
        parameters=declared,
        values=_substitute(values, blank),
        missing=tuple(missing),
        function=_substitute(document.function.model_dump(exclude_none=True), blank),
        triggers=[_substitute(t.model_dump(exclude_none=True), blank) for t in triggers],
        async_invoke=None if async_invoke is None else _substitute(async_invoke.model_dump(exclude_none=True), blank),
    )


def _read(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(
            f"{file}: no such file; give the template's path (the repository has template.yml)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{file}: cannot be read ({exc})") from None
    try:
        raw = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TemplateError(f"{file}: not valid YAML{where}: {problem}") from None
    sections = "parameters:, function:, triggers: and async_invoke:"
    if not isinstance(raw, dict):
        raise TemplateError(f"{file}: expected a mapping with {sections}")
    unknown = sorted(set(map(str, raw)) - set(Document.model_fields))
    if unknown:
        raise TemplateError(f"{file}: unknown top-level key {', '.join(unknown)}; expected {sections}")
    return raw


def _parameters(file: Path, raw: dict[str, Any]) -> dict[str, Parameter]:
    section = raw.get("parameters") or {}
    if not isinstance(section, dict):
        raise TemplateError(f"{file}: parameters: expected a mapping of NAME: {{description, default}}")
    declared: dict[str, Parameter] = {}
    for name, spec in section.items():
        if not isinstance(name, str) or not _PARAMETER_NAME.match(name):
            raise TemplateError(f"{file}: parameters.{name}: a parameter name is upper case, e.g. PROJECT_ID")
        if name in BUILTINS:
            raise TemplateError(
                f"{file}: parameters.{name}: ${{{name}}} is built in ({BUILTINS[name][0]}); give the parameter "
                "another name"
            )
        try:
            declared[name] = Parameter.model_validate(spec)
        except ValidationError as exc:
            problems = "; ".join(_describe(e, prefix=f"parameters.{name}") for e in exc.errors())
            raise TemplateError(f"{file}: {problems}") from None
    return declared


def _check_references(file: Path, raw: dict[str, Any], declared: Mapping[str, Parameter]) -> None:
    body = {k: v for k, v in raw.items() if k != "parameters"}
    for where, text in _strings(body, ""):
        for name in _REFERENCE.findall(text):
            if name in BUILTINS:
                if text != f"${{{name}}}" or where.endswith("]"):  # a whole value, not an item of a list
                    raise TemplateError(
                        f"{file}: {where}: ${{{name}}} is a list ({BUILTINS[name][0]}); write it as the whole "
                        f"value, e.g. operations: ${{{name}}}"
                    )
                continue
            if not _PARAMETER_NAME.match(name):
                raise TemplateError(f"{file}: {where}: ${{{name}}} is not a parameter reference; use ${{UPPER_CASE}}")
            if name not in declared:
                raise TemplateError(f"{file}: {where}: uses ${{{name}}}, which parameters: does not declare")
    for name, spec in declared.items():
        for other in _REFERENCE.findall(spec.default or ""):
            if other not in declared:
                raise TemplateError(
                    f"{file}: parameters.{name}.default: uses ${{{other}}}, which parameters: does not declare"
                )


def _resolve(
    file: Path,
    declared: Mapping[str, Parameter],
    params: Mapping[str, str],
    environ: Mapping[str, str],
) -> tuple[dict[str, str], list[str], set[str]]:
    """Each parameter's value; those with neither value nor default (their value is their own ${NAME}); those given."""
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise TemplateError(
            f"{file}: no parameter named {', '.join(unknown)}; declared: {', '.join(sorted(declared)) or 'none'}"
        )
    given: dict[str, str] = {}
    for name in declared:
        for source in (params, environ):
            value = source.get(name)
            if value is not None and value.strip():
                given[name] = value.strip()
                break
    values: dict[str, str] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> str:
        if name in values:
            return values[name]
        if name in chain:
            cycle = " -> ".join(f"${{{n}}}" for n in (*chain[chain.index(name) :], name))
            raise TemplateError(f"{file}: parameters.{chain[-1]}.default: the defaults refer in a circle ({cycle})")
        default = declared[name].default
        if name in given:
            value = given[name]  # taken as it is, even with a ${...} in it
        elif default is None:
            value = f"${{{name}}}"
        else:
            value = _REFERENCE.sub(lambda m: resolve(m.group(1), (*chain, name)), default)
        values[name] = value
        return value

    for name in declared:
        resolve(name, ())
    unset = [name for name in declared if name not in given and declared[name].default is None]
    for name, spec in declared.items():
        value = values[name]
        if spec.allowed is None or name in unset or (name not in given and _REFERENCE.fullmatch(value)):
            continue  # a default that refers to a parameter left unset: that one is reported instead
        if value not in spec.allowed:
            source = "its default" if name not in given else "the value given"
            raise TemplateError(
                f"{file}: parameter {name}: {value!r} ({source}) is not allowed; use one of {', '.join(spec.allowed)}"
            )
    return {name: values[name] for name in declared}, unset, set(given)


def _expand_builtins(file: Path, node: Any) -> Any:
    if isinstance(node, str):
        match = _REFERENCE.fullmatch(node)
        if match is None or match.group(1) not in BUILTINS:
            return node
        source, produce = BUILTINS[match.group(1)]
        try:
            return produce()
        except ImportError as exc:
            raise TemplateError(
                f"{file}: {node} comes from {source}, which cannot be imported ({exc}); put handler/ on sys.path "
                "(scripts/invoke, scripts/deploy and the tests do)"
            ) from None
    if isinstance(node, dict):
        return {k: _expand_builtins(file, v) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_builtins(file, v) for v in node]
    return node


def _substitute(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return _REFERENCE.sub(lambda m: values.get(m.group(1), m.group(0)), node)
    if isinstance(node, dict):
        return {k: _substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, values) for v in node]
    return node


def _strings(node: Any, where: str) -> list[tuple[str, str]]:
    if isinstance(node, str):
        return [(where, node)]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(v, f"{where}.{k}" if where else str(k))]
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in _strings(v, f"{where}[{i}]")]
    return []


def _label(index: int, trigger: Any) -> str:
    return f"triggers[{index}] ({trigger.trigger_type_code} trigger {trigger_name(trigger.model_dump())!r})"


def _check_statuses(file: Path, document: Document) -> None:
    for i, trigger in enumerate(document.triggers):
        kind, status = trigger.trigger_type_code, trigger.trigger_status
        if status not in (None, "ACTIVE") and kind not in DISABLEABLE_TRIGGERS:
            raise TemplateError(
                f"{file}: {_label(i, trigger)}: trigger_status {status}: FunctionGraph keeps {kind} triggers ACTIVE "
                f"(only {', '.join(DISABLEABLE_TRIGGERS[:-1])} and {DISABLEABLE_TRIGGERS[-1]} triggers can be "
                "DISABLED); leave trigger_status out, and leave the trigger out with when: where it must not run"
            )


def _holds(
    file: Path,
    index: int,
    when: Mapping[str, str | list[str]] | None,
    declared: Mapping[str, Parameter],
    values: Mapping[str, str],
) -> bool:
    """Whether a trigger's `when:` holds; a condition on an undeclared parameter, or a value it cannot take, is an
    error."""
    holds = True
    for name, wanted in (when or {}).items():
        where = f"triggers[{index}].when.{name}"
        if name not in declared:
            raise TemplateError(f"{file}: {where}: parameters: declares no {name}")
        choices = [wanted] if isinstance(wanted, str) else wanted
        allowed = declared[name].allowed
        for choice in choices:
            if allowed is not None and choice not in allowed:
                raise TemplateError(
                    f"{file}: {where}: {choice!r} is not a value {name} can take; it allows {', '.join(allowed)}"
                )
        holds = holds and values[name] in choices
    return holds


def _missing(
    raw: dict[str, Any], declared: Mapping[str, Parameter], given: set[str], unset: list[str], kept: list[int]
) -> list[str]:
    """The unset parameters that what is deployed uses: in the function, async_invoke, the kept triggers, a `when:`."""
    triggers = raw.get("triggers") if isinstance(raw.get("triggers"), list) else []
    used_by = [raw.get("function"), raw.get("async_invoke"), *(triggers[i] for i in kept)]
    needed = {name for _, text in _strings(used_by, "") for name in _REFERENCE.findall(text)}
    needed |= {name for t in triggers if isinstance(t, dict) and isinstance(t.get("when"), dict) for name in t["when"]}
    pending = list(needed)
    while pending:  # a default that refers to another parameter needs that one too
        name = pending.pop()
        spec = declared.get(name)
        if spec is not None and spec.default and name not in given:
            for other in set(_REFERENCE.findall(spec.default)) - needed:
                needed.add(other)
                pending.append(other)
    return [name for name in unset if name in needed]


def _check_unique_names(file: Path, triggers: list[Any], indices: list[int]) -> None:
    seen: set[tuple[str, str]] = set()
    for i, trigger in zip(indices, triggers, strict=True):
        key = (trigger.trigger_type_code, trigger_name(trigger.model_dump()) or "")
        if key in seen:
            raise TemplateError(
                f"{file}: triggers[{i}]: a second {key[0]} trigger named {key[1]!r}; deploy matches triggers by "
                "type and name, give each its own name"
            )
        seen.add(key)


def _check_user_data_keys(file: Path, user_data: Mapping[str, str]) -> None:
    """A key the function never reads is a typo; checked when the handler's package is importable."""
    try:
        from sysprep_guard.settings import KEYS
    except ImportError:  # devkit used without handler/ on sys.path: the tests still check the set
        return
    unknown = sorted(set(user_data) - set(KEYS))
    if unknown:
        raise TemplateError(
            f"{file}: function.user_data: the function reads no key {', '.join(unknown)}; it reads {', '.join(KEYS)}"
        )


def _describe(error: Any, prefix: str = "") -> str:
    parts = [prefix] if prefix else []
    parts += [f"[{p}]" if isinstance(p, int) else str(p) for p in error["loc"] if p not in TRIGGER_TYPES]
    where = ".".join(parts).replace(".[", "[")
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return f"{where}: unknown key; remove it or check its spelling against the FunctionGraph API"
    if kind == "missing":
        return f"{where}: required"
    if where.endswith("function.runtime"):
        return f"{where}: {value!r} is not a supported runtime; use one of {', '.join(RUNTIMES)}"
    if kind == "literal_error":
        return f"{where}: {value!r} is not allowed; {error['msg'].lower()}"
    if kind == "union_tag_not_found":
        return f"{where}: trigger_type_code required, one of {', '.join(TRIGGER_TYPES)}"
    if kind == "union_tag_invalid":
        tag = error["ctx"]["tag"]
        return f"{where}: trigger_type_code {tag!r} is not supported; use one of {', '.join(TRIGGER_TYPES)}"
    if kind == "string_type" and not isinstance(value, str):
        return f"{where}: expected a string, got {value!r}; quote it in YAML"
    message = str(error["ctx"]["error"]) if "error" in error.get("ctx", {}) else error["msg"]
    return f"{where}: {message} (got {value!r})" if isinstance(value, str | int | float) else f"{where}: {message}"
