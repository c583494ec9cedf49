"""The emulator: one server on 127.0.0.1 for every emulated service, each behind its endpoint's checks.

Workspace, SMN, CES and FunctionGraph sit behind the API gateway (SDK-HMAC-SHA256, the project id first in the path),
IAM too with no project in its path; OBS checks its own signatures and has no project in its paths. Each route
carries its endpoint (http.Endpoint), so the core reads the body, authenticates, checks that the caller's account
may act there (estate.py: whose project, whose keys) and injects faults the same way for every service.

A project the caller's account does not own, or does not exist, is refused 403 with the service's own code for "no
permission" (Workspace's API pages: 403 "没有操作权限"; CES documents ces.0017 "The authentication information is
incorrect or the service invoker does not have sufficient rights" for it). No source says whether the gateway
answers 401 APIG.0301 instead for another account's project: the emulator answers as the service, 403."""

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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from .estate import DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Estate, Issued, Project
from .faults import Fault, Injected
from .fleet import Fleet
from .functiongraph import Invocation, Run
from .http import (
    GATEWAY,
    MAX_REQUEST_BYTES,
    Answer,
    Endpoint,
    GatewaySignature,
    Handler,
    Request,
    Server,
    access_key_of,
    gateway_error,
    query_pairs,
    read_body,
    send,
)

if TYPE_CHECKING:
    from .obs import StoredObject

ALWAYS_INJECTABLE = frozenset({"assume", "invoke_async"})  # IAM's and FunctionGraph's, served or not yet

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
    """What the core needs of an emulated service: its error shape, its codes for the core's own refusals (a body
    it cannot read, another project), and whose keys it serves: "central" (the emulator's own account's projects, or
    with no project in the path its own keys only) or "any" (each project to its own account's keys; with no project
    in the path, any known key)."""

    bad_request_code: str
    forbidden_code: str
    accounts: str

    def error(self, status: int, code: str, message: str, request_id: str, close: bool = False) -> Answer: ...


@dataclass(frozen=True)
class Route:
    """One official operation: `pattern` matches its path; with an endpoint whose paths carry the project id (the
    gateway's), the first group is the project id."""

    method: str
    pattern: re.Pattern[str]
    kind: str  # the short name faults are injected by and calls are counted by: "list", "sysprep", ...
    operation: str  # the operation's official name (API Explorer, SDK): "ListDesktops", ...
    handle: Callable[[Request], Answer]
    service: Service
    endpoint: Endpoint = GATEWAY  # how requests reach it: who authenticates them, whether a project is in the path


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
    """Workspace and SMN, and on request OBS (`buckets`), Cloud Eye (`ces`), IAM and FunctionGraph, on one port,
    signature checks included.

    OBS is served when `buckets` is given (the buckets that exist, possibly none), CES when `ces` is true, IAM's
    CreateTemporaryAccessKeyByAgency with `iam` or once an account or agency is added, FunctionGraph's
    AsyncInvokeFunction with `functiongraph` or once a function is added: without them the emulator serves exactly
    the operations the function calls today. With `obs_dir`, OBS's objects are kept in files there too, and outlive
    the emulator.

    The default project (`project_id`, `region`, `fleet`) belongs to the emulator's own, central account
    (`domain_id`, `domain_name`), whose keys are `keys`. add_project adds Workspace projects, in that account or in
    member accounts (add_account); a member account's projects take only the temporary keys IAM issued through one
    of its agencies (add_agency)."""

    def __init__(
        self,
        *,
        project_id: str = DEFAULT_PROJECT_ID,
        region: str = DEFAULT_REGION,
        fleet: Fleet | None = None,
        topics: Sequence[str] | None = None,
        buckets: Sequence[str] | None = None,
        obs_dir: Path | None = None,
        ces: bool = False,
        keys: Mapping[str, tuple[str, str | None]] | None = None,
        domain_id: str = DEFAULT_DOMAIN_ID,
        domain_name: str = DEFAULT_DOMAIN_NAME,
        iam: bool = False,
        functiongraph: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        verbose: bool = False,
        record: bool = False,
    ) -> None:
        from .ces import Ces, MetricPoint
        from .functiongraph import FunctionGraph
        from .iam import Iam
        from .obs import Obs
        from .smn import Smn
        from .workspace import Workspace

        self.project_id = project_id
        self.region = region
        self.fleet = fleet if fleet is not None else Fleet()
        self.estate = Estate(domain_id, domain_name)  # accounts, added projects, agencies, issued keys
        topics = list(topics) if topics is not None else [topic_urn(region, project_id)]
        self.topic = topics[0] if topics else ""  # the first topic, for the function's SMN_TOPIC_URN
        self.topics: set[str] = set(topics)
        # access key -> (secret key, security token or None for a permanent key)
        self.keys: dict[str, tuple[str, str | None]] = dict(
            keys if keys is not None else {FAKE_AK: (FAKE_SK, FAKE_TOKEN)}
        )
        self.latency = latency  # seconds added to every call
        self.clock: Callable[[], float] = time.time  # what X-Sdk-Date, OBS's Date and CES's collect_time meet
        self.verbose = verbose
        self.host, self.port = host, port

        # What happened; read freely, reset with clear_records().
        self.calls: list[tuple[str, int]] = []  # (kind, HTTP status or DROPPED), in answer order
        self.published: list[Published] = []
        self.metrics: list[MetricPoint] = []  # CES data points accepted, in order
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
        self.ces = Ces(self) if ces else None
        self.obs = Obs(self, buckets, obs_dir) if buckets is not None else None
        self.iam = Iam(self)
        self.functiongraph = FunctionGraph(self)
        self._serving = {"iam": iam, "functiongraph": functiongraph}
        self.routes: tuple[Route, ...] = ()
        self._serve()

    def _serve(self, **services: bool) -> None:
        """(Re)build the routes served: IAM and FunctionGraph join when asked for."""
        with self._lock:
            self._serving.update(services)
            routes = [*self.workspace.routes(), *self.smn.routes()]
            if self.ces is not None:
                routes += self.ces.routes()
            if self._serving["iam"]:
                routes += self.iam.routes()
            if self._serving["functiongraph"]:
                routes += self.functiongraph.routes()
            if self.obs is not None:
                routes += self.obs.routes()  # last: its paths are the least specific
            self.routes = tuple(routes)
            self.fault_kinds = frozenset({route.kind for route in self.routes} | ALWAYS_INJECTABLE | {"any"})

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
        self.functiongraph.stop()
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

    def settings(self, **extra: str) -> dict[str, str]:
        """The function's configuration (user data) that points it at this emulator, plus `extra`."""
        return {
            "REGION": self.region,
            "PROJECT_ID": self.project_id,
            "SMN_TOPIC_URN": self.topic,
            "ENDPOINTS": self.url,
            **extra,
        }

    # Scripting ------------------------------------------------------------------------------------

    def add_job(self, job_id: str, states: Sequence[Mapping[str, Any]], *, project_id: str | None = None) -> None:
        """Each ShowJob of `job_id` (in `project_id`, by default the default project) answers the next state; the
        last one repeats."""
        self.workspace.add_job(job_id, states, project_id=project_id)

    def add_creation_job(
        self,
        job_id: str,
        desktop_ids: Sequence[str],
        *,
        running: int = 1,
        final: str = "SUCCESS",
        project_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """A job creating these fleet desktops: they are being created (no Sysprep info, a task in progress)
        until ShowJob has answered its final state, then as they were added (SUCCESS) or in ERROR (FAILED)."""
        return self.workspace.add_creation_job(job_id, desktop_ids, running=running, final=final, project_id=project_id)

    def add_rebuild_job(
        self,
        job_id: str,
        after: Mapping[str, Any],
        *,
        running: int = 1,
        final: str = "SUCCESS",
        project_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """A job re-imaging these fleet desktops (desktop id -> its Sysprep once re-imaged): task `rebuilding` with
        the old Sysprep until ShowJob has answered the final state, then the new one (SUCCESS) or the old (FAILED)."""
        return self.workspace.add_rebuild_job(job_id, after, running=running, final=final, project_id=project_id)

    # The estate: accounts, projects, agencies, issued keys --------------------------------------------------

    @property
    def domain_id(self) -> str:
        """The central account's domain id (its keys are `keys`)."""
        return self.estate.central.domain_id

    @property
    def domain_name(self) -> str:
        return self.estate.central.name

    def add_account(self, name: str, domain_id: str | None = None) -> str:
        """A member account; returns its domain id (obviously fake, derived from the name, unless given). IAM is
        served from now on."""
        domain_id = self.estate.add_account(name, domain_id)
        self._serve(iam=True)
        return domain_id

    def add_project(self, project_id: str, region: str, fleet: Fleet, account: str | None = None) -> None:
        """Another Workspace project, of `account` (a name or domain id; None: the central account)."""
        if project_id == self.project_id:
            raise ValueError(f"{project_id} is the default project already")
        self.estate.add_project(Project(project_id, region, fleet, self.estate.account(account).domain_id))

    def project(self, project_id: str) -> Project | None:
        """A project the emulator knows: the default one or one added."""
        if project_id == self.project_id:
            return Project(self.project_id, self.region, self.fleet, self.domain_id)
        return self.estate.project(project_id)

    def add_agency(self, account: str, name: str, trusts: str | None = None) -> None:
        """An agency `name` in member account `account` (name or domain id) that `trusts` (name or domain id; None:
        the central account) may assume with IAM CreateTemporaryAccessKeyByAgency."""
        self.estate.add_agency(account, name, trusts)
        self._serve(iam=True)

    @property
    def issued(self) -> list[Issued]:
        """The temporary keys IAM issued, in order: account (domain id), agency, duration, caller, keys, expiry."""
        return list(self.estate.issued)

    def expire_issued_keys(self, account: str | None = None) -> int:
        """Make the keys issued so far (for one account, by name or domain id, or all) expire now, on the emulator's
        clock, as if their duration had passed; returns how many."""
        domain_id = None if account is None else self.estate.account(account).domain_id
        return self.estate.expire(self.clock(), domain_id)

    def add_function(self, urn: str, run: Run) -> None:
        """A function AsyncInvokeFunction can invoke: `run(event, request_id)` runs each accepted invocation in this
        process, one at a time, in arrival order, on one worker thread. FunctionGraph is served from now on."""
        self.functiongraph.add(urn, run)
        self._serve(functiongraph=True)

    @property
    def invocations(self) -> list[Invocation]:
        """Every invocation accepted, in order, with what it returned or raised once finished."""
        return list(self.functiongraph.invocations)

    def wait_for_invocations(self, timeout: float = 30) -> bool:
        """Block until every accepted invocation has finished (True), or `timeout` seconds pass (False)."""
        return self.functiongraph.wait(timeout)

    @property
    def buckets(self) -> dict[str, dict[str, StoredObject]]:
        """OBS's buckets: name -> {key -> StoredObject} (empty when OBS is not served). Read under no lock only
        while no request is in progress."""
        return self.obs.buckets if self.obs is not None else {}

    def put_object(self, bucket: str, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        """Store an object as a PutObject would (for a run history that exists before the function runs)."""
        if self.obs is None:
            raise RuntimeError("OBS is not served: give Emulator(buckets=[...])")
        self.obs.store(bucket, key, data, content_type=content_type)

    def inject(self, kind: str, fault: Fault, times: int = 1, query: dict[str, str] | None = None) -> None:
        """The next `times` calls of `kind` ("any" for every kind) meet `fault`, in the order injected; with
        `query`, only calls whose query carries those values (e.g. {"offset": "1000"}: that page)."""
        if kind not in self.fault_kinds:
            raise ValueError(f"kind must be one of {sorted(self.fault_kinds)}, not {kind!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(Injected(kind, fault, times, query))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_records(self) -> None:
        with self._lock:
            self.calls.clear()
            self.published.clear()
            self.metrics.clear()
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
        route, match = self._route(request, raw_path)
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
                if answer.after is not None:
                    answer.after()
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _route(self, request: Handler, raw_path: str) -> tuple[Route | None, re.Match[str] | None]:
        for route in self.routes:
            match = route.pattern.match(raw_path)
            if match is None or request.command != route.method:
                continue
            claims = route.endpoint.claims
            if claims is None or claims(request, _groups(match)):
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

        limit = route.endpoint.max_request_bytes if route is not None else MAX_REQUEST_BYTES
        body = read_body(request, error, limit)
        if isinstance(body, Answer):
            return body
        if self.latency > 0 and self._stopping.wait(self.latency):
            return None
        if route is None or match is None:
            message = "The API does not exist or has not been published in the environment"
            return gateway_error(404, "APIG.0101", message, request_id)

        endpoint = route.endpoint
        groups = _groups(match)
        project = groups[0] if endpoint.project_in_path else None
        access_key = access_key_of(request)
        central_keys = dict(self.keys)
        now = self.clock()
        call = Request(
            method=request.command,
            path=raw_path,
            query=query_pairs(raw_query),
            body=body,
            params=groups[1:] if endpoint.project_in_path else groups,
            project_id=project,
            request_id=request_id,
            headers=dict(request.headers),
            account=self.estate.owner_of_key(access_key, central_keys),
        )
        refusal = None
        if isinstance(endpoint.authentication, GatewaySignature):  # OBS refuses expired keys as unknown ones
            refusal = self.estate.expired_refusal(access_key, central_keys, request_id, now)
        if refusal is None:
            keys = self.estate.keys(central_keys, now)
            refusal = endpoint.authentication.refusal(request, call, raw_query, keys, now)
        if refusal is not None:
            with self._lock:
                self.rejected_signatures += 1
            return refusal

        project_of_call = self.project(project) if project is not None else None
        problem = self.estate.not_permitted(route, call, project_of_call, request.headers.get("X-Project-Id"))
        if problem is not None:
            return route.service.error(403, route.service.forbidden_code, problem, request_id)

        fault = self._take_fault(route.kind, call.query)
        if fault is not None:
            if fault.delay > 0 and self._stopping.wait(fault.delay):
                return None
            if fault.drop:
                return None
            if fault.status is not None:
                text = fault.body.replace("{request_id}", request_id)
                return Answer(fault.status, text.encode(), fault.content_type)

        answer = route.handle(call)
        if self.record:
            with self._lock:
                self.exchanges.append(Exchange(route.operation, call, answer))
        return answer

    def _take_fault(self, kind: str, query: list[tuple[str, str]]) -> Fault | None:
        with self._lock:
            for injected in self._faults:
                if injected.applies(kind, query):
                    injected.left -= 1
                    if injected.left == 0:
                        self._faults.remove(injected)
                    return injected.fault
        return None


def _groups(match: re.Match[str]) -> tuple[str, ...]:
    """A route's path groups, percent-decoded (an optional group that did not take part is "")."""
    return tuple(unquote(group) if group is not None else "" for group in match.groups())
