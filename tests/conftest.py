"""Shared fixtures: the configuration, a fake FunctionGraph context and clock, and a mocked cloud."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import responses

import index
from devkit.context import Context
from sysprep_guard.settings import KEYS

EVENTS = Path(__file__).resolve().parent.parent / "events"
PROJECT = "0123456789abcdef0123456789abcdef"
REGION = "ap-southeast-1"
WORKSPACE = f"https://workspace.{REGION}.myhuaweicloud.com"
SMN = f"https://smn.{REGION}.myhuaweicloud.com"
TOPIC = f"urn:smn:{REGION}:{PROJECT}:sysprep-alerts"
# Obviously fake keys; tests scan everything captured for them.
FAKE_AK = "FAKEAKTESTONLY0000001"
FAKE_SK = "fake-sk-test-only-0000000000000000000001"
FAKE_TOKEN = "fake-security-token-test-only-000000000001"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def accounted(summary: dict[str, Any]) -> int:
    """Desktops a summary accounts for, by its totals: compliant, non-compliant and unchecked."""
    counts = summary["counts"]
    return summary["compliant"] + counts["non_compliant"] + counts["unchecked"]


def load_script(name: str) -> ModuleType:
    """A command-line tool of scripts/ (files without .py) as a module, to call its main() and helpers."""
    path = Path(__file__).resolve().parent.parent / "scripts" / name
    loader = importlib.machinery.SourceFileLoader(f"{name}_script", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module


def uuid_for(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


@dataclass
class FakeClock:
    t: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def wall(self) -> datetime:
        """The real date and time, moved on by the fake seconds slept."""
        return datetime.now(timezone.utc) + timedelta(seconds=self.t - 1000.0)


@dataclass
class Info:
    version: str | None = "3.0.10"
    hibernate: bool | None = True
    update_route: bool | None = True


@dataclass
class Fleet:
    """A mocked Workspace and SMN: desktops with their Sysprep info, jobs, and what was published."""

    desktops: dict[str, Info] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    task_status: dict[str, str] = field(default_factory=dict)  # desktops Workspace is working on
    without_info: set[str] = field(default_factory=set)  # listed, but left out of CheckSysprepInfo's answers
    jobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sysprep_calls: list[list[str]] = field(default_factory=list)
    list_calls: list[dict[str, str]] = field(default_factory=list)
    detail_calls: list[list[str]] = field(default_factory=list)  # the desktop ids of each ListDesktopsDetail
    published: list[dict[str, Any]] = field(default_factory=list)
    publish_paths: list[str] = field(default_factory=list)
    publish_attempts: list[dict[str, Any]] = field(default_factory=list)
    publish_error: tuple[int, dict[str, Any]] | None = None  # the answer to every publish call from...
    publish_fails_from: int = 0  # ...this many successful ones on
    clock: FakeClock | None = None
    seconds_per_call: float = 0.0  # each answer takes this long on the fake clock

    def _tick(self) -> None:
        """Workspace answers take `seconds_per_call` (SMN's take none: a deadline test needs time to publish)."""
        if self.clock is not None:
            self.clock.t += self.seconds_per_call

    def add(self, count: int, start: int = 1, **info: Any) -> list[str]:
        ids = [uuid_for(n) for n in range(start, start + count)]
        for desktop_id in ids:
            self.desktops[desktop_id] = Info(**info)
        return ids

    def register(self, mock: responses.RequestsMock) -> None:
        mock.add_callback(responses.GET, re.compile(rf"{WORKSPACE}/v2/{PROJECT}/desktops\?.*"), self._list)
        mock.add_callback(responses.GET, re.compile(rf"{WORKSPACE}/v2/{PROJECT}/desktops/detail\?.*"), self._detail)
        mock.add_callback(responses.POST, f"{WORKSPACE}/v2/{PROJECT}/sysprep", self._sysprep)
        mock.add_callback(responses.GET, re.compile(rf"{WORKSPACE}/v2/{PROJECT}/workspace-jobs/.*"), self._job)
        mock.add_callback(responses.POST, re.compile(rf"{SMN}/v2/{PROJECT}/notifications/topics/.*"), self._publish)

    def _list(self, request: Any) -> tuple[int, dict[str, str], str]:
        self._tick()
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        self.list_calls.append(query)
        offset, limit = int(query["offset"]), int(query["limit"])
        page = [self._record(d) for d in list(self.desktops)[offset : offset + limit]]
        return 200, {}, json.dumps({"total_count": len(self.desktops), "desktops": page})

    def _record(self, desktop_id: str) -> dict[str, Any]:
        record = {
            "desktop_id": desktop_id,
            "computer_name": f"desk-{desktop_id[-4:]}",
            "user_name": f"user{desktop_id[-4:]}",
            "status": self.status.get(desktop_id, "ACTIVE"),
        }
        if desktop_id in self.task_status:
            record["task_status"] = self.task_status[desktop_id]
        return record

    def _detail(self, request: Any) -> tuple[int, dict[str, str], str]:
        self._tick()
        ids = parse_qs(urlsplit(request.url).query).get("desktop_id", [])
        self.detail_calls.append(ids)
        page = [self._record(d) for d in ids if d in self.desktops]
        return 200, {}, json.dumps({"desktops": page, "total_count": len(page)})

    def _sysprep(self, request: Any) -> tuple[int, dict[str, str], str]:
        self._tick()
        ids = json.loads(request.body)["desktop_ids"]
        self.sysprep_calls.append(ids)
        infos = [
            {
                "desktop_id": d,
                "sysprep_version": i.version,
                "support_hibernate": i.hibernate,
                "support_update_route": i.update_route,
            }
            for d in ids
            if (i := self.desktops.get(d)) is not None and d not in self.without_info
        ]
        return 200, {"X-Request-Id": "req-sysprep"}, json.dumps({"sysprep_infos": infos})

    def _job(self, request: Any) -> tuple[int, dict[str, str], str]:
        self._tick()
        job_id = urlsplit(request.url).path.rsplit("/", 1)[1]
        states = self.jobs.get(job_id)
        if not states:
            return 404, {}, json.dumps({"error_code": "WKS.0404", "error_msg": "job not found"})
        state = states.pop(0) if len(states) > 1 else states[0]
        return 200, {}, json.dumps(state)

    def _publish(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.publish_paths.append(urlsplit(request.url).path)
        self.publish_attempts.append(json.loads(request.body))
        if self.publish_error and len(self.published) >= self.publish_fails_from:
            return self.publish_error[0], {}, json.dumps(self.publish_error[1])
        self.published.append(json.loads(request.body))
        return 200, {}, json.dumps({"request_id": "r1", "message_id": f"msg-{len(self.published)}"})

    @property
    def texts(self) -> list[str]:
        """The readable report of each published message (message_structure's default)."""
        return [json.loads(body["message_structure"])["default"] for body in self.published]

    @property
    def published_topics(self) -> list[str]:
        return [unquote(p.split("/topics/")[1].rsplit("/", 1)[0]) for p in self.publish_paths]


@pytest.fixture
def user_data() -> dict[str, str]:
    return {"REGION": REGION, "PROJECT_ID": PROJECT, "SMN_TOPIC_URN": TOPIC, "MIN_SYSPREP_VERSION": "3.0.10"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (
        *KEYS,
        "RUNTIME_PROJECT_ID",
        "HUAWEICLOUD_SDK_AK",
        "HUAWEICLOUD_SDK_SK",
        "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(index, "_services", None)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(index, "Clock", lambda: fake)
    return fake


@pytest.fixture
def cloud() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def fleet(cloud: responses.RequestsMock, clock: FakeClock) -> Fleet:
    fleet = Fleet(clock=clock)
    fleet.register(cloud)
    return fleet


@pytest.fixture
def invoke(user_data: dict[str, str], clock: FakeClock) -> Callable[..., dict[str, Any]]:
    """Run the handler as FunctionGraph would, with the agency's (fake) temporary keys."""

    def run(event: Any, *, timeout: float = 900, keys: bool = True, **settings: str) -> dict[str, Any]:
        context = Context(
            {**user_data, **settings},
            access_key=FAKE_AK if keys else "",
            secret_key=FAKE_SK if keys else "",
            security_token=FAKE_TOKEN if keys else "",
            timeout_seconds=timeout,
            now=clock.now,
        )
        return index.handler(event, context)

    return run
