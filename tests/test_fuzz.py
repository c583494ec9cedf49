"""Hostile input: arbitrary JSON and mutated real samples; the only failure allowed is our own EventError."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import EVENTS
from sysprep_guard.errors import EventError
from sysprep_guard.events import Check, Invocation, parse_event
from sysprep_guard.models import is_desktop_id

SAMPLES = [json.loads(p.read_text()) for p in sorted(EVENTS.glob("*.json"))]
KEYS = st.sampled_from(
    [
        "cts",
        "trace_name",
        "service_type",
        "resource_id",
        "request",
        "response",
        "job_id",
        "desktop_id",
        "desktop_ids",
        "code",
        "trace_status",
        "trigger_type",
        "specversion",
        "type",
        "data",
        "sweep",
        "x",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "TIMER",
            "Workspace",
            "createDesktop",
            "normal",
            "1.0",
            "WORKSPACE:CloudTrace:ApiCall",
            "00000000-0000-4000-8000-000000000001",
            '{"job_id": "j"}',
            "500",
        ]
    ),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), children, max_size=6)
    ),
    max_leaves=30,
)


def parse_or_event_error(raw: Any) -> Invocation | None:
    try:
        invocation = parse_event(raw)
    except EventError as exc:
        assert str(exc)  # says something a person can act on
        return None
    target = invocation.work
    if isinstance(target, Check):  # whatever was accepted is safe to send to the API
        assert all(is_desktop_id(d) for d in target.desktop_ids)
        assert target.desktop_ids or target.job_ids
    return invocation


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_arbitrary_json_never_escapes_as_another_error(raw: Any) -> None:
    parse_or_event_error(raw)


@st.composite
def mutated_sample(draw: st.DrawFn) -> Any:
    event = copy.deepcopy(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 4))):
        node = event
        # walk down to a random container, then replace, delete or add a key
        while True:
            children = list(node.items()) if isinstance(node, dict) else []
            containers = [(k, v) for k, v in children if isinstance(v, dict)]
            if not containers or draw(st.booleans()):
                break
            node = draw(st.sampled_from(containers))[1]
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node)))
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                node[key] = draw(JSON)
            elif action == "delete":
                del node[key]
            else:
                node[draw(KEYS)] = draw(JSON)
    return event


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sample())
def test_mutated_samples_never_escape_as_another_error(raw: Any) -> None:
    parse_or_event_error(raw)


def test_deeply_nested_traces_are_bounded() -> None:
    response: Any = {"job_id": "j"}
    for _ in range(5000):
        response = {"next": response}
    event = {"cts": {"service_type": "Workspace", "trace_name": "createDesktop", "response": response}}
    parse_or_event_error(event)


def test_a_json_string_nested_beyond_the_parser_is_no_crash() -> None:
    event = {"cts": {"service_type": "Workspace", "trace_name": "createDesktop", "request": "[" * 100_000}}
    parse_or_event_error(event)
