"""template.yml: read, fill its ${NAME} parameters, validate, and hand out the FunctionGraph request bodies.

    template = load_template("template.yml", params={"REGION": "ap-southeast-1", ...})
    template.function        # CreateFunction fields, user_data as a mapping
    template.triggers        # CreateFunctionTrigger bodies
    template.user_data       # {"REGION": "...", ...}: what the function reads
    template.python_version  # "3.10"

Every problem is one TemplateError naming the file and what to fix in it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictStr, ValidationError, field_validator

RUNTIMES = ("Python3.9", "Python3.10", "Python3.12")
MEMORY_SIZES = (128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096)
USER_DATA_MAX_ENTRIES = 20
USER_DATA_MAX_BYTES = 4096

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_PARAMETER_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
_CRON_FIELDS = re.compile(r"^[0-9A-Za-z*?,/-]+$")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ten times faster


class TemplateError(Exception):
    """The template cannot be used; the message says where and what to fix."""


# The models: the template as the FunctionGraph API takes it, with the checks the API documents.
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Parameter(_Strict):
    description: StrictStr = Field(min_length=1)
    default: StrictStr | None = None


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
            raise ValueError(f"{size} bytes once serialised, FunctionGraph takes at most {USER_DATA_MAX_BYTES}")
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
    operations: list[Annotated[StrictStr, Field(pattern=r"^[A-Za-z]+:[A-Za-z0-9_]+:[A-Za-z0-9_]+$")]] = Field(
        min_length=1, max_length=100
    )


class EventGridData(_Strict):
    trigger_name: StrictStr = Field(pattern=_NAME)
    channel_id: StrictStr = Field(min_length=1)
    channel_name: StrictStr = Field(min_length=1)
    source_name: StrictStr = Field(min_length=1)
    event_types: list[StrictStr] = Field(min_length=1)
    agency: StrictStr | None = None


class _Trigger(_Strict):
    trigger_status: Literal["ACTIVE", "DISABLED"] = "ACTIVE"
    event_type_code: StrictStr | None = None


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


class Document(_Strict):
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    function: Function
    triggers: list[Trigger] = Field(default_factory=list)


@dataclass(frozen=True, eq=False)
class Template:
    path: Path
    parameters: dict[str, Parameter]  # as declared
    values: dict[str, str]  # what each parameter resolved to
    missing: tuple[str, ...]  # required parameters left empty (only with require_params=False)
    function: dict[str, Any]  # CreateFunction fields; user_data is a mapping
    triggers: list[dict[str, Any]]  # CreateFunctionTrigger bodies

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


def serialise_user_data(user_data: Mapping[str, str]) -> str:
    """The JSON string FunctionGraph stores; empty values are left out (to the function, empty means unset)."""
    return json.dumps({k: v for k, v in user_data.items() if v.strip()}, separators=(",", ":"), sort_keys=True)


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

    With require_params=False a parameter with neither value nor default becomes "" and is listed in
    `.missing` (for a local run that does not need, say, the agency).
    """
    file = Path(path)
    raw = _read(file)
    declared = _parameters(file, raw)
    _check_references(file, raw, declared)
    values, missing = _resolve(file, declared, params or {}, os.environ if environ is None else environ)
    if missing and require_params:
        lines = "\n".join(f"  {name}: {declared[name].description}" for name in missing)
        raise TemplateError(
            f"{file}: missing parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}; set "
            f"{'each' if len(missing) > 1 else 'it'} as an environment variable or with --param NAME=VALUE:\n{lines}"
        )
    # A missing parameter keeps its ${NAME} through validation (only a value given can be wrong), then becomes "".
    placeholders = {**values, **{name: f"${{{name}}}" for name in missing}}
    filled = {k: v if k == "parameters" else _substitute(v, placeholders) for k, v in raw.items()}
    try:
        document = Document.model_validate(filled)
    except ValidationError as exc:
        raise TemplateError(f"{file}: " + "; ".join(_describe(error) for error in exc.errors())) from None
    _check_unique_names(file, document)
    _check_user_data_keys(file, document.function.user_data)
    empty = dict.fromkeys(missing, "")
    return Template(
        path=file,
        parameters=declared,
        values=values,
        missing=tuple(missing),
        function=_substitute(document.function.model_dump(exclude_none=True), empty),
        triggers=[_substitute(t.model_dump(exclude_none=True), empty) for t in document.triggers],
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
    if not isinstance(raw, dict):
        raise TemplateError(f"{file}: expected a mapping with parameters:, function: and triggers:")
    unknown = sorted(set(map(str, raw)) - set(Document.model_fields))
    if unknown:
        raise TemplateError(
            f"{file}: unknown top-level key {', '.join(unknown)}; expected parameters:, function: and triggers:"
        )
    return raw


def _parameters(file: Path, raw: dict[str, Any]) -> dict[str, Parameter]:
    section = raw.get("parameters") or {}
    if not isinstance(section, dict):
        raise TemplateError(f"{file}: parameters: expected a mapping of NAME: {{description, default}}")
    declared: dict[str, Parameter] = {}
    for name, spec in section.items():
        if not isinstance(name, str) or not _PARAMETER_NAME.match(name):
            raise TemplateError(f"{file}: parameters.{name}: a parameter name is upper case, e.g. PROJECT_ID")
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
            if not _PARAMETER_NAME.match(name):
                raise TemplateError(f"{file}: {where}: ${{{name}}} is not a parameter reference; use ${{UPPER_CASE}}")
            if name not in declared:
                raise TemplateError(f"{file}: {where}: uses ${{{name}}}, which parameters: does not declare")


def _resolve(
    file: Path,
    declared: Mapping[str, Parameter],
    params: Mapping[str, str],
    environ: Mapping[str, str],
) -> tuple[dict[str, str], list[str]]:
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise TemplateError(
            f"{file}: no parameter named {', '.join(unknown)}; declared: {', '.join(sorted(declared)) or 'none'}"
        )
    values: dict[str, str] = {}
    missing: list[str] = []
    for name, spec in declared.items():
        for source in (params, environ):
            value = source.get(name)
            if value is not None and value.strip():
                values[name] = value.strip()
                break
        else:
            if spec.default is None:
                missing.append(name)
                values[name] = ""
            else:
                values[name] = spec.default
    return values, missing


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


def _check_unique_names(file: Path, document: Document) -> None:
    seen: set[tuple[str, str]] = set()
    for i, trigger in enumerate(document.triggers):
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
