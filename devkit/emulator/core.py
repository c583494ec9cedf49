"""The emulator: one server on 127.0.0.1 for every emulated service, with the gateway's checks in front."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from .faults import Fault, Injected
from .fleet import Fleet
from .http import Answer, Handler, Request, Server, gateway_error, query_pairs, read_body, send, signature_problem

# Obviously fake keys: the only ones the emulator accepts unless told otherwise.
FAKE_AK = "EMULATORAKFAKE000001"
FAKE_SK = "emulator-fake-secret-key-not-real-000001"
FAKE_TOKEN = "emulator-fake-token-000001"

DEFAULT_PROJECT_ID = "0123456789abcdef0123456789abcdef"  # the project of the sample events
DEFAULT_REGION = "ap-southeast-1"
DEFAULT_TOPIC_NAME = "sysprep-alerts"
DROPPED = 0  # the status recorded for a call answered by closing the connection


def topic_urn(region: str, project_id: str, name: str = DEFAULT_TOPIC_NAME) -> str:
    return f"urn:smn:{region}:{project_id}:{name}"


class Service(Protocol):
    """What the gateway needs of an emulated service: its error shape and its codes for the gateway's refusals."""

    bad_request_code: str
    forbidden_code: str

    def error(self, status: int, code: str, message: str, request_id: str, close: bool = False) -> Answer: ...


@dataclass(frozen=True)
class Route:
    """One official operation: `pattern` matches its path, whose first group is the project id."""

    method: str
    pattern: re.Pattern[str]
    kind: str  # the short name faults are injected by and calls are counted by: "list", "sysprep", ...
    operation: str  # the operation's official name (API Explorer, SDK): "ListDesktops", ...
    handle: Callable[[Request], Answer]
    service: Service


@dataclass(frozen=True)
class Exchange:
    """A call that reached its service, and the service's answer (recorded with Emulator(record=True))."""

    operation: str
    request: Request
    answer: Answer


@dataclass(frozen=True)
class Published:
    topic_urn: str
    subject: str
    body: dict[str, Any]
    message_id: str

    @property
    def protocols(self) -> dict[str, str]:
        """The message per protocol: message_structure's keys, or {"default": message}."""
        structure = self.body.get("message_structure")
        if isinstance(structure, str):
            return json.loads(structure)
        message = self.body.get("message")
        return {"default": message} if isinstance(message, str) else {}

    @property
    def message(self) -> str | None:
        """What a subscriber with no protocol of its own gets: the plain message, or the structure's default."""
        return self.protocols.get("default")


class Emulator:
    """Workspace and SMN (and, through their modules, the other services) on one port, signature checks included."""

    def __init__(
        self,
        *,
        project_id: str = DEFAULT_PROJECT_ID,
        region: str = DEFAULT_REGION,
        fleet: Fleet | None = None,
        topics: Sequence[str] | None = None,
        keys: Mapping[str, tuple[str, str | None]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        verbose: bool = False,
        record: bool = False,
    ) -> None:
        from .smn import Smn
        from .workspace import Workspace

        self.project_id = project_id
        self.region = region
        self.fleet = fleet if fleet is not None else Fleet()
        topics = list(topics) if topics is not None else [topic_urn(region, project_id)]
        self.topic = topics[0] if topics else ""  # the first topic, for the function's SMN_TOPIC_URN
        self.topics: set[str] = set(topics)
        # access key -> (secret key, security token or None for a permanent key)
        self.keys: dict[str, tuple[str, str | None]] = dict(
            keys if keys is not None else {FAKE_AK: (FAKE_SK, FAKE_TOKEN)}
        )
        self.latency = latency  # seconds added to every call
        self.clock: Callable[[], float] = time.time  # what X-Sdk-Date is checked against
        self.verbose = verbose
        self.host, self.port = host, port

        # What happened; read freely, reset with clear_records().
        self.calls: list[tuple[str, int]] = []  # (kind, HTTP status or DROPPED), in answer order
        self.published: list[Published] = []
        self.rejected_signatures = 0
        self.max_concurrency = 0  # most requests in progress at once
        self.errors: list[str] = []  # the emulator's own bugs (answered 500): tests assert it stays empty
        self.record = record
        self.exchanges: list[Exchange] = []  # with record=True: every call that reached a service, and its answer

        self._faults: list[Injected] = []
        self._active = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # signalled as each request ends
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

        self.workspace = Workspace(self)
        self.smn = Smn(self)
        self.routes: tuple[Route, ...] = (*self.workspace.routes(), *self.smn.routes())
        self.fault_kinds = frozenset({route.kind for route in self.routes} | {"any"})

    # Lifecycle ------------------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._stopping.clear()
        self._server = Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop promptly: sleeping answers wake and drop their connection, idle keep-alives are closed."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._idle:  # let woken sleepers record their call before their connections go
            self._idle.wait_for(lambda: self._active == 0, timeout=1.0)
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.port = 0

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running: use start() or `with Emulator(...) as emu`")
        return f"http://{self.host}:{self.port}"

    # Scripting ------------------------------------------------------------------------------------

    def add_job(self, job_id: str, states: Sequence[Mapping[str, Any]]) -> None:
        """Each ShowJob of `job_id` answers the next state; the last one repeats."""
        self.workspace.add_job(job_id, states)

    def add_creation_job(
        self, job_id: str, desktop_ids: Sequence[str], *, running: int = 1, final: str = "SUCCESS"
    ) -> list[dict[str, Any]]:
        """A job creating these fleet desktops: they are being created (no Sysprep info, a task in progress)
        until ShowJob has answered its final state, then as they were added (SUCCESS) or in ERROR (FAILED)."""
        return self.workspace.add_creation_job(job_id, desktop_ids, running=running, final=final)

    def add_rebuild_job(
        self, job_id: str, after: Mapping[str, Any], *, running: int = 1, final: str = "SUCCESS"
    ) -> list[dict[str, Any]]:
        """A job re-imaging these fleet desktops (desktop id -> its Sysprep once re-imaged): task `rebuilding` with
        the old Sysprep until ShowJob has answered the final state, then the new one (SUCCESS) or the old (FAILED)."""
        return self.workspace.add_rebuild_job(job_id, after, running=running, final=final)

    def inject(self, kind: str, fault: Fault, times: int = 1) -> None:
        """The next `times` calls of `kind` ("any" for every kind) meet `fault`, in the order injected."""
        if kind not in self.fault_kinds:
            raise ValueError(f"kind must be one of {sorted(self.fault_kinds)}, not {kind!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(Injected(kind, fault, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_records(self) -> None:
        with self._lock:
            self.calls.clear()
            self.published.clear()
            self.exchanges.clear()
            self.rejected_signatures = 0
            self.max_concurrency = self._active

    @property
    def counts(self) -> Counter[str]:
        """Calls answered so far, by kind."""
        with self._lock:
            return Counter(kind for kind, _ in self.calls)

    @property
    def active(self) -> int:
        """Requests in progress now (a slow fault's sleeper counts)."""
        return self._active

    # Serving --------------------------------------------------------------------------------------

    def _handle(self, request: Handler) -> None:
        request.request_id = request_id = uuid.uuid4().hex
        raw_path, _, raw_query = request.path.partition("?")
        route, match = self._route(request.command, raw_path)
        kind = route.kind if route is not None else "other"
        with self._lock:
            self._active += 1
            self.max_concurrency = max(self.max_concurrency, self._active)
        try:
            try:
                answer = self._answer(request, route, match, raw_path, raw_query, request_id)
            except Exception as exc:  # an emulator bug: say so loudly rather than look like a cloud fault
                self.errors.append(f"{request.command} {raw_path}: {exc!r}")
                traceback.print_exc()
                answer = gateway_error(500, "EMULATOR.BUG", f"emulator bug: {exc!r}", request_id)
            with self._lock:
                self.calls.append((kind, DROPPED if answer is None else answer.status))
            if self.verbose:
                status = "dropped" if answer is None else answer.status
                print(f"{request.command} {raw_path} -> {status} ({kind})", file=sys.stderr, flush=True)
            if answer is None:
                request.close_connection = True
            else:
                send(request, answer)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _route(self, method: str, raw_path: str) -> tuple[Route | None, re.Match[str] | None]:
        for route in self.routes:
            match = route.pattern.match(raw_path)
            if match is not None and method == route.method:
                return route, match
        return None, None

    def _answer(
        self,
        request: Handler,
        route: Route | None,
        match: re.Match[str] | None,
        raw_path: str,
        raw_query: str,
        request_id: str,
    ) -> Answer | None:
        def error(status: int, message: str, close: bool = False) -> Answer:
            if route is None:
                return gateway_error(status, "APIG.0201", message, request_id, close=close)
            return route.service.error(status, route.service.bad_request_code, message, request_id, close=close)

        body = read_body(request, error)
        if isinstance(body, Answer):
            return body
        if self.latency > 0 and self._stopping.wait(self.latency):
            return None
        if route is None or match is None:
            message = "The API does not exist or has not been published in the environment"
            return gateway_error(404, "APIG.0101", message, request_id)

        problem = signature_problem(request, raw_path, raw_query, body, self.keys, self.clock())
        if problem is not None:
            with self._lock:
                self.rejected_signatures += 1
            return gateway_error(401, "APIG.0301", f"Incorrect IAM authentication information: {problem}", request_id)

        project = unquote(match.group(1))
        header_project = request.headers.get("X-Project-Id")
        if project != self.project_id or (header_project is not None and header_project != project):
            message = f"project {project!r} is not the project of these credentials ({self.project_id})"
            return route.service.error(403, route.service.forbidden_code, message, request_id)

        fault = self._take_fault(route.kind)
        if fault is not None:
            if fault.delay > 0 and self._stopping.wait(fault.delay):
                return None
            if fault.drop:
                return None
            if fault.status is not None:
                text = fault.body.replace("{request_id}", request_id)
                return Answer(fault.status, text.encode(), fault.content_type)

        call = Request(
            method=request.command,
            path=raw_path,
            query=query_pairs(raw_query),
            body=body,
            params=tuple(unquote(g) for g in match.groups()[1:]),
            project_id=project,
            request_id=request_id,
            headers=dict(request.headers),
        )
        answer = route.handle(call)
        if self.record:
            with self._lock:
                self.exchanges.append(Exchange(route.operation, call, answer))
        return answer

    def _take_fault(self, kind: str) -> Fault | None:
        with self._lock:
            for injected in self._faults:
                if injected.kind in (kind, "any"):
                    injected.left -= 1
                    if injected.left == 0:
                        self._faults.remove(injected)
                    return injected.fault
        return None
