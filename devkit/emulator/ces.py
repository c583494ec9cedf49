"""Cloud Eye (CES): CreateMetricData, `POST /V1.0/{project_id}/metric-data`, behind the API gateway like Workspace.

The rules are those of the API Explorer definition of CreateMetricData and of huaweicloudsdkces 3.1.219's models: a
body of 1 to 10,000 data points, at most 512 KB; each {metric: {namespace, metric_name, dimensions: 1 to 4
{name, value}}, ttl (1 to 604800), collect_time (ms, from 3 days before the server's time to 10 minutes after),
value, unit (at most 32), type ("int" or "float")}. A namespace is `service.item` (3 to 32 letters, digits and `_`,
each part starting with a letter); Cloud Eye keeps SYS, AGT and SRE namespaces for its own metrics (ces.0009).
Success is 201 with no body (the definition's only success answer). Errors are CES's v1 shape,
{"http_code", "message": {"details", "code"}}, with its documented codes ces.0001, ces.0009, ces.0014, ces.0017.
A field the model does not have is refused (ces.0014): the emulator is stricter there than CES may be.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .http import GATEWAY, Answer, Endpoint, Request, json_answer

if TYPE_CHECKING:
    from .core import Emulator, Route

POINTS_MAX = 10_000  # the body's maxItems
BODY_MAX_BYTES = 512 * 1024  # "a POST request cannot exceed 512 KB"
DIMENSIONS_MAX = 4
TTL_MAX = 604_800  # seconds: 7 days
COLLECT_PAST_MS = 3 * 24 * 3600 * 1000  # collect_time: no earlier than 3 days before the server's time ...
COLLECT_FUTURE_MS = 10 * 60 * 1000  # ... and no later than 10 minutes after it
RESERVED_NAMESPACES = ("SYS", "AGT", "SRE")  # Cloud Eye's own: not for custom metrics

# The definition's patterns (NamespaceSchema, MetricNameSchema, MetricsDimension).
_NAMESPACE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*$")
_METRIC_NAME = re.compile(r"^[A-Za-z][0-9A-Za-z_-]*$")
_DIMENSION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_DIMENSION_VALUE = re.compile(r"^[A-Za-z0-9*_/#()][A-Za-z0-9_\-./#()]*$")
_POINT_FIELDS = {"metric", "ttl", "collect_time", "value", "unit", "type"}
_REQUIRED_POINT_FIELDS = ("metric", "ttl", "collect_time", "value")
_METRIC_FIELDS = {"namespace", "metric_name", "dimensions"}

ENDPOINT = Endpoint(GATEWAY.authentication, project_in_path=True, max_request_bytes=BODY_MAX_BYTES)


@dataclass(frozen=True)
class MetricPoint:
    """One data point CES accepted."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    value: float
    collect_time: int  # ms
    ttl: int
    unit: str | None = None
    type: str | None = None


class Problem(Exception):
    def __init__(self, status: int, code: str, details: str) -> None:
        super().__init__(details)
        self.status, self.code, self.details = status, code, details


class Ces:
    bad_request_code = "ces.0014"
    forbidden_code = "ces.0017"
    accounts = "central"  # the central account's projects only

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def routes(self) -> list[Route]:
        from .core import Route

        pattern = re.compile(r"^/V1\.0/([^/]+)/metric-data/?$")
        return [Route("POST", pattern, "ces", "CreateMetricData", self._create, self, ENDPOINT)]

    def error(self, status: int, code: str, message: str, request_id: str, close: bool = False) -> Answer:
        """CES's v1 error body: {"http_code", "message": {"details", "code"}}."""
        body = {"http_code": str(status), "message": {"details": message, "code": code}}
        return json_answer(status, body, close=close)

    def _create(self, request: Request) -> Answer:
        if not request.body.strip():
            return self.error(400, "ces.0001", "The content must be specified.", request.request_id)
        try:
            data = json.loads(request.body)
        except ValueError:
            data = None
            problem: Problem | None = Problem(400, "ces.0014", "the body is not JSON")
        else:
            problem = None
        points: list[MetricPoint] = []
        if problem is None:
            try:
                points = metric_points(data, self.emulator.clock() * 1000)
            except Problem as exc:
                problem = exc
        if problem is not None:
            details = f"Some content in message body is not correct: {problem.details}"
            if problem.code == "ces.0009":
                details = f"Adding SYS metric is not allowed: {problem.details}"
            return self.error(problem.status, problem.code, details, request.request_id)
        with self.emulator._lock:
            self.emulator.metrics.extend(points)
        return Answer(201, b"")


def metric_points(data: Any, now_ms: float) -> list[MetricPoint]:
    """The data points of a CreateMetricData body, or Problem saying which rule it breaks."""
    if not isinstance(data, list):
        raise Problem(400, "ces.0014", "the body must be a JSON array of data points")
    if not 1 <= len(data) <= POINTS_MAX:
        raise Problem(400, "ces.0014", f"the body must hold 1 to {POINTS_MAX} data points, got {len(data)}")
    return [_point(item, f"[{i}]", now_ms) for i, item in enumerate(data)]


def _point(item: Any, where: str, now_ms: float) -> MetricPoint:
    if not isinstance(item, dict):
        raise Problem(400, "ces.0014", f"{where} must be an object")
    unknown = sorted(set(item) - _POINT_FIELDS)
    if unknown:
        raise Problem(400, "ces.0014", f"{where} has fields CreateMetricDataRequestBody does not: {unknown}")
    missing = [name for name in _REQUIRED_POINT_FIELDS if item.get(name) is None]
    if missing:
        raise Problem(400, "ces.0014", f"{where} lacks {missing}")
    namespace, name, dimensions = _metric(item["metric"], f"{where}.metric")

    ttl = item["ttl"]
    if not _integer(ttl) or not 1 <= ttl <= TTL_MAX:
        raise Problem(400, "ces.0014", f"{where}.ttl must be an integer from 1 to {TTL_MAX}, got {ttl!r}")
    collect = item["collect_time"]
    if not _integer(collect):
        raise Problem(400, "ces.0014", f"{where}.collect_time must be an integer of milliseconds, got {collect!r}")
    if not now_ms - COLLECT_PAST_MS <= collect <= now_ms + COLLECT_FUTURE_MS:
        message = (
            f"{where}.collect_time {collect} is not within the last 3 days and the next 10 minutes "
            f"of the server's time ({int(now_ms)} ms)"
        )
        raise Problem(400, "ces.0014", message)
    value = item["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Problem(400, "ces.0014", f"{where}.value must be a finite number, got {value!r}")
    unit = item.get("unit")
    if unit is not None and (not isinstance(unit, str) or len(unit) > 32):
        raise Problem(400, "ces.0014", f"{where}.unit must be a string of at most 32 characters, got {unit!r}")
    kind = item.get("type")
    if kind is not None and kind not in ("int", "float"):
        raise Problem(400, "ces.0014", f'{where}.type must be "int" or "float", got {kind!r}')
    return MetricPoint(namespace, name, dimensions, value, collect, ttl, unit, kind)


def _metric(metric: Any, where: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    if not isinstance(metric, dict):
        raise Problem(400, "ces.0014", f"{where} must be an object")
    unknown = sorted(set(metric) - _METRIC_FIELDS)
    if unknown:
        raise Problem(400, "ces.0014", f"{where} has fields MetricInfo does not: {unknown}")
    namespace, name, dimensions = metric.get("namespace"), metric.get("metric_name"), metric.get("dimensions")
    if not isinstance(namespace, str) or not 3 <= len(namespace) <= 32 or not _NAMESPACE.match(namespace):
        message = (
            f"{where}.namespace must be service.item, 3 to 32 letters, digits and _ with each part starting "
            f"with a letter, got {namespace!r}"
        )
        raise Problem(400, "ces.0014", message)
    if namespace.startswith(RESERVED_NAMESPACES):
        raise Problem(403, "ces.0009", f"{where}.namespace {namespace!r}: SYS, AGT and SRE are Cloud Eye's own")
    if not isinstance(name, str) or not 1 <= len(name) <= 96 or not _METRIC_NAME.match(name):
        message = (
            f"{where}.metric_name must start with a letter and hold 1 to 96 letters, digits, _ and -, got {name!r}"
        )
        raise Problem(400, "ces.0014", message)
    if not isinstance(dimensions, list) or not 1 <= len(dimensions) <= DIMENSIONS_MAX:
        raise Problem(400, "ces.0014", f"{where}.dimensions must be a list of 1 to {DIMENSIONS_MAX}")
    pairs = []
    for i, dimension in enumerate(dimensions):
        at = f"{where}.dimensions[{i}]"
        if not isinstance(dimension, dict) or set(dimension) != {"name", "value"}:
            raise Problem(400, "ces.0014", f"{at} must be exactly {{name, value}}")
        key, value = dimension["name"], dimension["value"]
        if not isinstance(key, str) or not 1 <= len(key) <= 32 or not _DIMENSION_NAME.match(key):
            message = f"{at}.name must start with a letter and hold 1 to 32 letters, digits, _ and -, got {key!r}"
            raise Problem(400, "ces.0014", message)
        if not isinstance(value, str) or not 1 <= len(value) <= 256 or not _DIMENSION_VALUE.match(value):
            message = f"{at}.value must be 1 to 256 of letters, digits and _-./#()* (not starting with - or .)"
            raise Problem(400, "ces.0014", f"{message}, got {value!r}")
        pairs.append((key, value))
    return namespace, name, tuple(pairs)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
