"""A local stand-in for the Workspace and SMN endpoints the function calls, signature checks included.

One `ThreadingHTTPServer` on 127.0.0.1 serves both services, so the function is configured with
WORKSPACE_ENDPOINT = SMN_ENDPOINT = `emulator.url`. Like the API gateway, it refuses any request that is
not signed SDK-HMAC-SHA256 with a key it knows (checked with huaweicloudsdkcore's own signer), and it
enforces the documented limits, so that a request the emulator accepts is one the cloud would accept.

    with Emulator(fleet=Fleet.seeded(500)) as emu:
        emu.inject("sysprep", Fault.throttled())
        ...  # point the function at emu.url, sign with FAKE_AK / FAKE_SK / FAKE_TOKEN

`python -m devkit.emulator --port 8080 --desktops 50` runs it in the foreground until Ctrl-C.
Error codes that Huawei documents are used as documented (APIG.0101, APIG.0201, APIG.0301, APIG.0308,
SMN.0006, SMN.0021, SMN.0032); the WKS.* codes and SMN.0001 are the emulator's own.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import hmac
import json
import random
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import unquote

from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

# Obviously fake keys: the only ones the emulator accepts unless told otherwise.
FAKE_AK = "EMULATORAKFAKE000001"
FAKE_SK = "emulator-fake-secret-key-not-real-000001"
FAKE_TOKEN = "emulator-fake-token-000001"

DEFAULT_PROJECT_ID = "0123456789abcdef0123456789abcdef"  # the project of the sample events
DEFAULT_REGION = "ap-southeast-1"
DEFAULT_TOPIC_NAME = "sysprep-alerts"

LIST_MAX = 1000  # ListDesktops' largest page
SYSPREP_MAX = 100  # CheckSysprepInfo's ids per call
SUBJECT_MAX_BYTES = 512
MESSAGE_MAX_BYTES = 256 * 1024
ATTRIBUTES_MAX = 10
ATTRIBUTE_TYPES = frozenset({"STRING", "STRING_ARRAY", "PROTOCOL"})
MAX_DATE_SKEW = 15 * 60  # seconds; the gateway refuses an X-Sdk-Date further off
MAX_REQUEST_BYTES = 2 * 1024 * 1024  # above any valid request (a 256 KB message, JSON-escaped)
DROPPED = 0  # the status recorded for a call answered by closing the connection

Kind = Literal["list", "sysprep", "show", "job", "publish", "other"]
FaultKind = Literal["list", "sysprep", "show", "job", "publish", "any"]
_FAULT_KINDS = frozenset({"list", "sysprep", "show", "job", "publish", "any"})


def topic_urn(region: str, project_id: str, name: str = DEFAULT_TOPIC_NAME) -> str:
    return f"urn:smn:{region}:{project_id}:{name}"


# The fleet -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sysprep:
    """A desktop's answer in CheckSysprepInfo."""

    version: str | None = "3.1.2"
    hibernate: bool | None = True
    update_route: bool | None = True


@dataclass(frozen=True, slots=True)
class Desktop:
    desktop_id: str
    computer_name: str
    user_name: str
    status: str = "ACTIVE"
    sysprep: Sysprep | None = Sysprep()  # None: Workspace has no Sysprep info and leaves it out
    created: str = "2026-01-01T00:00:00.000Z"
    kind: str = "custom"  # what the seeded fleet made it (see KINDS); "custom" once added or edited
    desktop_type: str = "DEDICATED"
    enterprise_project_id: str = "0"

    def record(self) -> dict[str, Any]:
        """As listed by ListDesktops."""
        return {
            "desktop_id": self.desktop_id,
            "computer_name": self.computer_name,
            "user_name": self.user_name,
            "status": self.status,
            "created": self.created,
            "desktop_type": self.desktop_type,
            "enterprise_project_id": self.enterprise_project_id,
            "tags": [],
        }

    def sysprep_record(self) -> dict[str, Any] | None:
        """As answered by CheckSysprepInfo (None: left out of the answer)."""
        if self.sysprep is None:
            return None
        return {
            "desktop_id": self.desktop_id,
            "sysprep_version": self.sysprep.version,
            "support_hibernate": self.sysprep.hibernate,
            "support_update_route": self.sysprep.update_route,
        }


COMPLIANT = "compliant"
BUILDING = "building"
# What a seeded desktop can be: (status, Sysprep info). Every kind but the first two fails a policy of
# "version >= 3.0.10, hibernation and route update supported" in exactly one way.
KINDS: dict[str, tuple[str, Sysprep | None]] = {
    COMPLIANT: ("ACTIVE", Sysprep()),
    BUILDING: ("BUILD", None),  # being provisioned: neither compliant nor not
    "version_below_minimum": ("ACTIVE", Sysprep(version="3.0.9")),  # below 3.0.10 numerically, above as text
    "version_far_below_minimum": ("ACTIVE", Sysprep(version="2.5")),
    "no_hibernate": ("ACTIVE", Sysprep(hibernate=False)),
    "no_update_route": ("SHUTOFF", Sysprep(update_route=False)),  # a stopped desktop is still checked
    "version_missing": ("ACTIVE", Sysprep(version=None)),
    "version_unreadable": ("ACTIVE", Sysprep(version="beta")),
    "no_sysprep_info": ("ACTIVE", None),
}
_KIND_NAMES = tuple(KINDS)
# Compliant desktops take turns at these versions: the boundary itself, and one that sorts wrong as text.
_COMPLIANT_INFOS = tuple(Sysprep(version=v) for v in ("3.1.2", "3.0.10", "3.10"))
_CREATED_BASE = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp())  # seeded desktops: a minute apart


class Fleet:
    """The project's desktops: seeded ones derived from their index (one byte each), plus edits and additions.

    Seeded desktop ids are UUIDs whose first 24 characters come from the seed and whose last 12 are the
    index in hex, so a fleet of 100,000 costs about 100 KB and an id is resolved without a table.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        digest = hashlib.sha256(f"sysprep-guard-emulator:{seed}".encode()).hexdigest()
        variant = "89ab"[int(digest[15], 16) % 4]
        self._prefix = f"{digest[:8]}-{digest[8:12]}-4{digest[12:15]}-{variant}{digest[16:19]}-"
        self._kinds = bytearray()  # one index into _KIND_NAMES per seeded desktop
        self._edited: dict[int, Desktop] = {}
        self._added: list[Desktop] = []
        self._added_at: dict[str, int] = {}
        self._rng = random.Random(f"added:{seed}")  # ids of added desktops, reproducible too

    @classmethod
    def seeded(cls, n: int, seed: int = 0, per_kind: float = 0.02) -> Fleet:
        """`n` desktops: `per_kind` of them (at least one, fleet size permitting) of each non-compliant kind
        and BUILD, at positions drawn from `seed`; the rest compliant."""
        if n < 0:
            raise ValueError("a fleet cannot have fewer than 0 desktops")
        fleet = cls(seed)
        fleet._kinds = bytearray(n)  # all 0: compliant
        each = max(1, round(n * per_kind))
        codes = [code for code in range(1, len(_KIND_NAMES)) for _ in range(each)][:n]
        rng = random.Random(seed)
        for position, code in zip(rng.sample(range(n), len(codes)), codes, strict=True):
            fleet._kinds[position] = code
        return fleet

    def __len__(self) -> int:
        return len(self._kinds) + len(self._added)

    def __iter__(self) -> Iterator[Desktop]:
        return (self.at(i) for i in range(len(self)))

    def __contains__(self, desktop_id: object) -> bool:
        return isinstance(desktop_id, str) and self._position(desktop_id) is not None

    def at(self, position: int) -> Desktop:
        """The desktop at this position of the listing."""
        seeded = len(self._kinds)
        if 0 <= position < seeded:
            return self._edited.get(position) or self._seeded(position)
        if seeded <= position < len(self):
            return self._added[position - seeded]
        raise IndexError(position)

    def page(self, offset: int, limit: int) -> list[Desktop]:
        return [self.at(i) for i in range(offset, min(offset + limit, len(self)))]

    def get(self, desktop_id: str) -> Desktop | None:
        position = self._position(desktop_id)
        return None if position is None else self.at(position)

    def __getitem__(self, desktop_id: str) -> Desktop:
        desktop = self.get(desktop_id)
        if desktop is None:
            raise KeyError(desktop_id)
        return desktop

    def ids(self, kind: str | None = None) -> list[str]:
        """Desktop ids in listing order, optionally only those of one kind (without building the desktops)."""
        seeded = len(self._kinds)
        ids = [f"{self._prefix}{i:012x}" for i in range(seeded) if kind is None or self._seeded_kind(i) == kind]
        return ids + [d.desktop_id for d in self._added if kind is None or d.kind == kind]

    def kind_counts(self) -> Counter[str]:
        counts = Counter({name: self._kinds.count(code) for code, name in enumerate(_KIND_NAMES)})
        for position, desktop in self._edited.items():
            counts[_KIND_NAMES[self._kinds[position]]] -= 1
            counts[desktop.kind] += 1
        counts.update(d.kind for d in self._added)
        return +counts  # without the kinds it has none of

    def add(
        self,
        sysprep: Sysprep | None = Sysprep(),  # frozen, so sharing the default is safe
        *,
        status: str = "ACTIVE",
        desktop_id: str | None = None,
        computer_name: str | None = None,
        user_name: str | None = None,
        kind: str = "custom",
    ) -> str:
        """Add a desktop after the seeded ones and return its id (random but reproducible unless given)."""
        desktop_id = (desktop_id or str(uuid.UUID(int=self._rng.getrandbits(128), version=4))).lower()
        if desktop_id in self:
            raise ValueError(f"desktop {desktop_id} is already in the fleet")
        number = len(self._added) + 1
        self._added_at[desktop_id] = len(self._added)
        self._added.append(
            Desktop(
                desktop_id=desktop_id,
                computer_name=computer_name or f"added-{number:04d}",
                user_name=user_name or f"added{number:04d}",
                status=status,
                sysprep=sysprep,
                kind=kind,
            )
        )
        return desktop_id

    def update(self, desktop_id: str, /, **changes: Any) -> Desktop:
        """Change a desktop's fields (`sysprep=Sysprep(...)`, `status=...`); it becomes kind "custom"."""
        position = self._position(desktop_id)
        if position is None:
            raise KeyError(desktop_id)
        if "desktop_id" in changes:
            raise ValueError("a desktop's id cannot change")
        changes.setdefault("kind", "custom")
        desktop = dataclasses.replace(self.at(position), **changes)
        if position < len(self._kinds):
            self._edited[position] = desktop
        else:
            self._added[position - len(self._kinds)] = desktop
        return desktop

    def _seeded_kind(self, i: int) -> str:
        edited = self._edited.get(i)
        return edited.kind if edited is not None else _KIND_NAMES[self._kinds[i]]

    def _seeded(self, i: int) -> Desktop:
        kind = _KIND_NAMES[self._kinds[i]]
        status, sysprep = KINDS[kind]
        if kind == COMPLIANT:
            sysprep = _COMPLIANT_INFOS[i % len(_COMPLIANT_INFOS)]
        return Desktop(
            desktop_id=f"{self._prefix}{i:012x}",
            computer_name=f"desk-{i + 1:06d}",
            user_name=f"user{i + 1:06d}",
            status=status,
            sysprep=sysprep,
            created=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(_CREATED_BASE + 60 * i)),
            kind=kind,
        )

    def _position(self, desktop_id: str) -> int | None:
        desktop_id = desktop_id.lower()
        if desktop_id.startswith(self._prefix):
            tail = desktop_id[len(self._prefix) :]
            if len(tail) == 12 and all(c in "0123456789abcdef" for c in tail):
                index = int(tail, 16)
                return index if index < len(self._kinds) else None
        added = self._added_at.get(desktop_id)
        return None if added is None else len(self._kinds) + added


# Jobs ----------------------------------------------------------------------------------------------


def creation_job(
    job_id: str,
    desktops: Sequence[Desktop | str],
    *,
    running: int = 1,
    final: str = "SUCCESS",
    job_type: str = "CREATE_DESKTOP",
) -> list[dict[str, Any]]:
    """ShowJob answers for a job creating these desktops: `running` polls RUNNING, then `final` for good."""

    def state(status: str) -> dict[str, Any]:
        subs = []
        for n, desktop in enumerate(desktops):
            entities = (
                {
                    "desktop_id": desktop.desktop_id,
                    "desktop_name": desktop.computer_name,
                    "user_name": desktop.user_name,
                }
                if isinstance(desktop, Desktop)
                else {"desktop_id": desktop, "desktop_name": None, "user_name": None}
            )
            sub: dict[str, Any] = {"id": f"{job_id}-{n}", "status": status, "entities": entities}
            if status not in ("RUNNING", "SUCCESS"):
                sub["fail_reason"] = "emulated failure"
            subs.append(sub)
        return {"id": job_id, "job_type": job_type, "status": status, "sub_jobs_total": len(subs), "sub_jobs": subs}

    return [state("RUNNING") for _ in range(running)] + [state(final)]


# Faults --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """What the emulator does instead of (or before) answering. `{request_id}` in a body is filled in."""

    name: str
    status: int | None = None  # None: answer normally, after `delay`
    body: str = ""
    content_type: str = "application/json"
    delay: float = 0.0
    drop: bool = False  # close the connection without an answer

    @classmethod
    def throttled(cls) -> Fault:
        return cls.answer(
            429,
            {
                "error_code": "APIG.0308",
                "error_msg": "The throttling threshold has been reached: policy user over ratelimit, limit:5,time:1s",
                "request_id": "{request_id}",
            },
            name="throttled",
        )

    @classmethod
    def server_error(cls) -> Fault:
        return cls.answer(500, {"error_code": "WKS.0500", "error_msg": "Internal server error."}, name="server_error")

    @classmethod
    def bad_gateway(cls) -> Fault:
        page = (
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        )
        return cls("bad_gateway", 502, page, "text/html")

    @classmethod
    def unavailable(cls) -> Fault:
        body = {"error_code": "APIG.0201", "error_msg": "Backend unavailable", "request_id": "{request_id}"}
        return cls.answer(503, body, name="unavailable")

    @classmethod
    def not_json(cls) -> Fault:
        """A 200 cut off mid-way: says JSON, is not."""
        return cls("not_json", 200, '{"desktops": [{"desktop_id": "', "application/json")

    @classmethod
    def wrong_shape(cls) -> Fault:
        """A 200 with valid JSON that is no documented answer."""
        return cls.answer(200, {"result": "ok", "items": None}, name="wrong_shape")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally after `seconds`; other requests go on meanwhile, and stop() cuts it short."""
        return cls("slow", delay=seconds)

    @classmethod
    def dropped(cls) -> Fault:
        return cls("dropped", drop=True)

    @classmethod
    def answer(cls, status: int, body: Any, *, name: str = "custom", content_type: str = "application/json") -> Fault:
        """Any canned answer: `body` as text, or JSON-encoded if it is not a str."""
        text = body if isinstance(body, str) else json.dumps(body)
        return cls(name, status, text, content_type)


@dataclass
class _Injected:
    kind: str
    fault: Fault
    left: int


# Records -------------------------------------------------------------------------------------------


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


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json;charset=UTF-8"
    close: bool = False


def _json_answer(status: int, payload: Any, *, close: bool = False) -> _Answer:
    return _Answer(status, json.dumps(payload, ensure_ascii=False).encode(), close=close)


def _gateway_error(status: int, code: str, message: str, request_id: str) -> _Answer:
    return _json_answer(status, {"error_code": code, "error_msg": message, "request_id": request_id})


def _service_error(kind: str, status: int, code: str, message: str, request_id: str, close: bool = False) -> _Answer:
    """Workspace answers {error_code, error_msg}; SMN {request_id, code, message}."""
    if kind == "publish":
        return _json_answer(status, {"request_id": request_id, "code": code, "message": message}, close=close)
    return _json_answer(status, {"error_code": code, "error_msg": message}, close=close)


_ROUTES: tuple[tuple[str, Kind, re.Pattern[str]], ...] = (
    ("GET", "list", re.compile(r"^/v2/([^/]+)/desktops/?$")),
    ("POST", "sysprep", re.compile(r"^/v2/([^/]+)/sysprep/?$")),
    # ShowSysprepInfo, one desktop a call: what the official SDK baseline in benchmarks/ calls.
    ("GET", "show", re.compile(r"^/v2/([^/]+)/desktops/([^/]+)/sysprep/?$")),
    ("GET", "job", re.compile(r"^/v2/([^/]+)/workspace-jobs/([^/]+)/?$")),
    ("POST", "publish", re.compile(r"^/v2/([^/]+)/notifications/topics/([^/]+)/publish/?$")),
)
_AUTHORIZATION = re.compile(r"^SDK-HMAC-SHA256 Access=([^,\s]+), SignedHeaders=([^,\s]+), Signature=([0-9a-f]+)$")


@dataclass(frozen=True)
class _Keys:
    """What huaweicloudsdkcore's Signer reads from credentials."""

    ak: str
    sk: str = field(repr=False)


# The server ----------------------------------------------------------------------------------------


class Emulator:
    """Workspace (ListDesktops, CheckSysprepInfo, ShowSysprepInfo, ShowJob) and SMN (PublishMessage) on one port."""

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
    ) -> None:
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

        self._jobs: dict[str, list[dict[str, Any]]] = {}
        self._faults: list[_Injected] = []
        self._active = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # signalled as each request ends
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle ------------------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
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
        if not states:
            raise ValueError("a job needs at least one state")
        with self._lock:
            self._jobs[job_id] = [dict(s) for s in states]

    def add_creation_job(
        self, job_id: str, desktop_ids: Sequence[str], *, running: int = 1, final: str = "SUCCESS"
    ) -> list[dict[str, Any]]:
        """A job that creates these desktops, named as in the fleet; returns the scripted states."""
        desktops = [self.fleet.get(d) or d for d in desktop_ids]
        states = creation_job(job_id, desktops, running=running, final=final)
        self.add_job(job_id, states)
        return states

    def inject(self, kind: FaultKind, fault: Fault, times: int = 1) -> None:
        """The next `times` calls of `kind` ("any" for every kind) meet `fault`, in the order injected."""
        if kind not in _FAULT_KINDS:
            raise ValueError(f"kind must be one of {sorted(_FAULT_KINDS)}, not {kind!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(_Injected(kind, fault, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_records(self) -> None:
        with self._lock:
            self.calls.clear()
            self.published.clear()
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

    def _handle(self, request: _Handler) -> None:
        request.request_id = request_id = uuid.uuid4().hex
        raw_path, _, raw_query = request.path.partition("?")
        kind, match = _route(request.command, raw_path)
        with self._lock:
            self._active += 1
            self.max_concurrency = max(self.max_concurrency, self._active)
        try:
            try:
                answer = self._answer(request, kind, match, raw_path, raw_query, request_id)
            except Exception as exc:  # an emulator bug: say so loudly rather than look like a cloud fault
                self.errors.append(f"{request.command} {raw_path}: {exc!r}")
                traceback.print_exc()
                answer = _service_error(kind, 500, "EMULATOR.BUG", f"emulator bug: {exc!r}", request_id)
            with self._lock:
                self.calls.append((kind, DROPPED if answer is None else answer.status))
            if self.verbose:
                status = "dropped" if answer is None else answer.status
                print(f"{request.command} {raw_path} -> {status} ({kind})", file=sys.stderr, flush=True)
            if answer is None:
                request.close_connection = True
            else:
                _send(request, answer)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _answer(
        self,
        request: _Handler,
        kind: Kind,
        match: re.Match[str] | None,
        raw_path: str,
        raw_query: str,
        request_id: str,
    ) -> _Answer | None:
        body_or_error = _read_body(request, kind, request_id)
        if isinstance(body_or_error, _Answer):
            return body_or_error
        body = body_or_error
        if self.latency > 0 and self._stopping.wait(self.latency):
            return None
        if match is None:
            message = "The API does not exist or has not been published in the environment"
            return _gateway_error(404, "APIG.0101", message, request_id)

        problem = self._authenticate(request, raw_path, raw_query, body)
        if problem is not None:
            with self._lock:
                self.rejected_signatures += 1
            message = f"Incorrect IAM authentication information: {problem}"
            return _gateway_error(401, "APIG.0301", message, request_id)

        project = unquote(match.group(1))
        header_project = request.headers.get("X-Project-Id")
        if project != self.project_id or (header_project is not None and header_project != project):
            code = "SMN.0001" if kind == "publish" else "WKS.0403"
            message = f"project {project!r} is not the project of these credentials ({self.project_id})"
            return _service_error(kind, 403, code, message, request_id)

        fault = self._take_fault(kind)
        if fault is not None:
            if fault.delay > 0 and self._stopping.wait(fault.delay):
                return None
            if fault.drop:
                return None
            if fault.status is not None:
                text = fault.body.replace("{request_id}", request_id)
                return _Answer(fault.status, text.encode(), fault.content_type)

        if kind == "list":
            return self._list(_query_pairs(raw_query), request_id)
        if kind == "sysprep":
            return self._sysprep(body, request_id)
        if kind == "show":
            return self._show(unquote(match.group(2)), request_id)
        if kind == "job":
            return self._job(unquote(match.group(2)), request_id)
        return self._publish(unquote(match.group(2)), body, request_id)

    def _authenticate(self, request: _Handler, raw_path: str, raw_query: str, body: bytes) -> str | None:
        """None if the request is signed as the gateway wants, else what is wrong with it."""
        authorization = (request.headers.get("Authorization") or "").strip()
        if not authorization:
            return "no Authorization header"
        parsed = _AUTHORIZATION.match(authorization)
        if parsed is None:
            return "Authorization is not 'SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...'"
        access_key, signed_headers = parsed.group(1), parsed.group(2).split(";")
        if access_key not in self.keys:
            return "unknown access key"
        secret_key, token = self.keys[access_key]
        for required in ("host", "x-sdk-date"):
            if required not in signed_headers:
                return f"header {required} is not signed"

        date = request.headers.get("X-Sdk-Date") or ""
        try:
            signed_at = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            return f"X-Sdk-Date {date!r} is not in the format 20260101T000000Z"
        if abs(self.clock() - signed_at) > MAX_DATE_SKEW:
            return f"X-Sdk-Date {date} is more than 15 minutes away from the server's time"

        presented = request.headers.get("X-Security-Token")
        if token is not None:
            if presented is None:
                return "no X-Security-Token for a temporary access key"
            if not hmac.compare_digest(presented.encode(), token.encode()):
                return "wrong X-Security-Token"
            if "x-security-token" not in signed_headers:
                return "header x-security-token is not signed"
        elif presented is not None:
            return "X-Security-Token sent with a permanent access key"

        headers: dict[str, str] = {}
        for name in signed_headers:
            value = request.headers.get(name)
            if value is None:
                return f"signed header {name} is missing"
            headers[name] = _header_text(value)
        # Rebuild the request and sign it as the SDK does: any difference in what was signed shows here.
        rebuilt = SdkRequest(
            method=request.command,
            schema="http",
            host=request.headers.get("Host") or "",
            resource_path=raw_path,
            query_params=_query_pairs(raw_query),
            header_params=headers,
            body=body,
        )
        try:
            expected = Signer(_Keys(access_key, secret_key)).sign(rebuilt).header_params["Authorization"]
        except Exception as exc:  # whatever the signer cannot canonicalise, the gateway refuses too
            return f"the request cannot be verified ({type(exc).__name__})"
        if not hmac.compare_digest(expected.encode(), authorization.encode()):
            return "the signature does not match the request"
        return None

    def _take_fault(self, kind: str) -> Fault | None:
        with self._lock:
            for injected in self._faults:
                if injected.kind in (kind, "any"):
                    injected.left -= 1
                    if injected.left == 0:
                        self._faults.remove(injected)
                    return injected.fault
        return None

    # The four calls ---------------------------------------------------------------------------

    def _list(self, query: list[tuple[str, str]], request_id: str) -> _Answer:
        params = dict(reversed(query))  # the first of a repeated parameter wins
        try:
            offset = int(params.get("offset", "0"))
            limit = int(params.get("limit", str(LIST_MAX)))
        except ValueError:
            return _service_error("list", 400, "WKS.0001", "offset and limit must be integers", request_id)
        if offset < 0 or not 1 <= limit <= LIST_MAX:
            message = f"offset must be >= 0 and limit 1 to {LIST_MAX}, got offset {offset}, limit {limit}"
            return _service_error("list", 400, "WKS.0001", message, request_id)
        desktops = [d.record() for d in self.fleet.page(offset, limit)]
        return _json_answer(200, {"total_count": len(self.fleet), "desktops": desktops})

    def _sysprep(self, body: bytes, request_id: str) -> _Answer:
        data = _load_json(body)
        ids = data.get("desktop_ids") if isinstance(data, dict) else None
        if not isinstance(ids, list) or not all(isinstance(d, str) for d in ids):
            message = 'the body must be {"desktop_ids": [...]}, a list of desktop id strings'
            return _service_error("sysprep", 400, "WKS.0001", message, request_id)
        if not 1 <= len(ids) <= SYSPREP_MAX:
            message = f"desktop_ids must hold 1 to {SYSPREP_MAX} ids, got {len(ids)}"
            return _service_error("sysprep", 400, "WKS.0001", message, request_id)
        infos, seen = [], set()
        for desktop_id in ids:
            desktop = self.fleet.get(desktop_id)  # ids match case-insensitively, once each
            record = desktop.sysprep_record() if desktop is not None else None
            if record is not None and record["desktop_id"] not in seen:  # unknown and info-less ids are left out
                seen.add(record["desktop_id"])
                infos.append(record)
        return _json_answer(200, {"sysprep_infos": infos})

    def _show(self, desktop_id: str, request_id: str) -> _Answer:
        desktop = self.fleet.get(desktop_id)
        record = desktop.sysprep_record() if desktop is not None else None
        if record is None:
            return _service_error("show", 404, "WKS.0404", f"no Sysprep info for desktop {desktop_id}", request_id)
        return _json_answer(200, {"sysprep_version": record["sysprep_version"], "support_create_image": True})

    def _job(self, job_id: str, request_id: str) -> _Answer:
        with self._lock:
            states = self._jobs.get(job_id)
            if states is not None and len(states) > 1:
                state: dict[str, Any] | None = states.pop(0)
            else:
                state = states[0] if states else None
        if state is None:
            return _service_error("job", 404, "WKS.0404", f"job {job_id} does not exist", request_id)
        return _json_answer(200, state)

    def _publish(self, topic: str, body: bytes, request_id: str) -> _Answer:
        if topic not in self.topics:
            return _service_error("publish", 404, "SMN.0006", "Topic not found.", request_id)
        data = _load_json(body)
        problem = _publish_problem(data)
        if problem is not None:
            return _service_error("publish", 400, problem[0], problem[1], request_id)
        assert isinstance(data, dict)  # _publish_problem checked it
        message_id = uuid.uuid4().hex
        with self._lock:
            self.published.append(Published(topic, data["subject"], data, message_id))
        return _json_answer(200, {"request_id": request_id, "message_id": message_id})


def _publish_problem(data: Any) -> tuple[str, str] | None:
    """SMN's rules for a publish body, as (code, message), or None if it is fine."""
    if not isinstance(data, dict):
        return "SMN.0001", "the body must be a JSON object"
    subject = data.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        return "SMN.0001", "subject is required"
    if len(subject.encode()) > SUBJECT_MAX_BYTES:
        return "SMN.0001", f"subject is {len(subject.encode())} bytes, over {SUBJECT_MAX_BYTES}"
    given = [k for k in ("message", "message_structure", "message_template_name") if data.get(k) is not None]
    if len(given) != 1:
        return "SMN.0001", f"give exactly one of message, message_structure, message_template_name; got {given}"
    if "message" in given:
        message = data["message"]
        if not isinstance(message, str) or not message:
            return "SMN.0001", "message must be a non-empty string"
        if len(message.encode()) > MESSAGE_MAX_BYTES:
            return "SMN.0001", f"message is {len(message.encode())} bytes, over {MESSAGE_MAX_BYTES}"
    elif "message_structure" in given:
        structure = data["message_structure"]
        parsed = _load_json(structure.encode()) if isinstance(structure, str) else None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("default"), str):
            return "SMN.0021", "MessageStructure is invalid: a JSON object string with a string 'default' key"
        if len(structure.encode()) > MESSAGE_MAX_BYTES:
            return "SMN.0021", f"message_structure is over {MESSAGE_MAX_BYTES} bytes"
    elif not isinstance(data["message_template_name"], str) or not data["message_template_name"]:
        return "SMN.0032", "Parameter: message_template_name is invalid."
    attributes = data.get("message_attributes")
    if attributes is not None:
        if not isinstance(attributes, list) or len(attributes) > ATTRIBUTES_MAX:
            return "SMN.0001", f"message_attributes must be a list of at most {ATTRIBUTES_MAX}"
        for attribute in attributes:
            if not _valid_attribute(attribute):
                return "SMN.0001", f"invalid message attribute {attribute!r}"
    ttl = data.get("time_to_live")
    if ttl is not None and not (isinstance(ttl, str) and ttl.isdigit()):
        return "SMN.0001", "time_to_live must be a string of seconds"
    return None


# SMN's rules for message attributes (PublishMessage's MessageAttribute): a name of lower-case letters, digits and
# single inner underscores, 1 to 32; a STRING value of 1 to 32 letters (Chinese too), digits or underscores; a
# STRING_ARRAY of 1 to 10 distinct such values; PROTOCOL, a list of protocol names.
_ATTRIBUTE_NAME = re.compile(r"^(?!_)(?!.*__)[a-z0-9_]{1,32}(?<!_)$")
_ATTRIBUTE_VALUE = re.compile(r"^[A-Za-z0-9_\u4e00-\u9fff]{1,32}$")


def _valid_attribute(attribute: Any) -> bool:
    if not isinstance(attribute, dict) or not _ATTRIBUTE_NAME.match(str(attribute.get("name", ""))):
        return False
    kind, value = attribute.get("type"), attribute.get("value")
    if kind not in ATTRIBUTE_TYPES:
        return False
    if kind == "STRING":
        return isinstance(value, str) and bool(_ATTRIBUTE_VALUE.match(value))
    if not (isinstance(value, list) and 1 <= len(value) <= 10 and all(isinstance(v, str) for v in value)):
        return False
    return kind == "PROTOCOL" or (len(set(value)) == len(value) and all(_ATTRIBUTE_VALUE.match(v) for v in value))


# HTTP plumbing -------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping at exit never holds the process

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the function's requests.Session uses it
    timeout = 60  # an idle keep-alive connection ends on its own
    server: _Server
    server_version = "sysprep-guard-emulator"
    request_id: str | None = None

    def handle_one_request(self) -> None:
        self.request_id = None  # one connection carries many requests
        super().handle_one_request()

    def end_headers(self) -> None:
        # Every answer carries a request id, even the error pages http.server writes itself (400, 501).
        self.send_header("X-Request-Id", self.request_id or uuid.uuid4().hex)
        super().end_headers()

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm meets the client's delayed
        # ACK and every answer waits 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.emulator._lock:
            self.server.emulator._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.emulator._lock:
                self.server.emulator._connections.discard(self.connection)

    def do_GET(self) -> None:
        self.server.emulator._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # Emulator(verbose=True) prints its own one line per call


def _route(method: str, raw_path: str) -> tuple[Kind, re.Match[str] | None]:
    for route_method, kind, pattern in _ROUTES:
        match = pattern.match(raw_path)
        if match is not None and method == route_method:
            return kind, match
    return "other", None


def _read_body(request: _Handler, kind: str, request_id: str) -> bytes | _Answer:
    if "chunked" in (request.headers.get("Transfer-Encoding") or "").lower():
        return _service_error(kind, 411, "WKS.0001", "send a Content-Length", request_id, close=True)
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return _service_error(kind, 400, "WKS.0001", "bad Content-Length", request_id, close=True)
    if length < 0 or length > MAX_REQUEST_BYTES:
        return _service_error(kind, 413, "WKS.0001", f"body over {MAX_REQUEST_BYTES} bytes", request_id, close=True)
    return request.rfile.read(length) if length else b""


def _send(request: _Handler, answer: _Answer) -> None:
    try:
        request.send_response(answer.status)
        request.send_header("Content-Type", answer.content_type)
        request.send_header("Content-Length", str(len(answer.body)))
        if answer.close:
            request.send_header("Connection", "close")
            request.close_connection = True
        request.end_headers()
        request.wfile.write(answer.body)
    except OSError:  # the client gave up (its timeout) before the answer
        request.close_connection = True


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """The query as the signer saw it: percent-decoded pairs, in order ('+' stays '+', as the SDK encodes)."""
    pairs = []
    for item in raw_query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def _header_text(value: str) -> str:
    """http.server decodes header bytes as Latin-1; the signer signed the UTF-8 text."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


# CLI -----------------------------------------------------------------------------------------------


def banner(emulator: Emulator) -> str:
    """What someone starting the emulator by hand needs to point the function at it."""
    keys = emulator.keys.get(FAKE_AK)
    counts = emulator.fleet.kind_counts()
    fleet = ", ".join(f"{n:,} {kind}" for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    url = emulator.url
    lines = [
        f"emulator listening on {url}",
        f"  project id   {emulator.project_id}",
        f"  region       {emulator.region}",
        f"  topic URN    {emulator.topic}",
        f"  desktops     {len(emulator.fleet):,} (seed {emulator.fleet.seed}): {fleet or 'none'}",
    ]
    if keys is not None:
        lines += [
            f"  access key   {FAKE_AK}",
            f"  secret key   {keys[0]}",
            f"  token        {keys[1] or '(none)'}",
        ]
    lines += [
        "configure the function with:",
        f"  REGION={emulator.region} PROJECT_ID={emulator.project_id} SMN_TOPIC_URN={emulator.topic}",
        f"  WORKSPACE_ENDPOINT={url} SMN_ENDPOINT={url}",
    ]
    if keys is not None:
        lines.append(
            f"  HUAWEICLOUD_SDK_AK={FAKE_AK} HUAWEICLOUD_SDK_SK={keys[0]}"
            + (f" HUAWEICLOUD_SDK_SECURITY_TOKEN={keys[1]}" if keys[1] else "")
        )
    lines.append("Ctrl-C stops it.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.emulator",
        description="Run the local Workspace + SMN emulator in the foreground until Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (0 picks a free one; default 8080)")
    parser.add_argument("--desktops", type=int, default=50, help="size of the seeded fleet (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fleet (default 0)")
    parser.add_argument("--project-id", default=DEFAULT_PROJECT_ID)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    parser.add_argument("--quiet", action="store_true", help="do not print a line per call")
    args = parser.parse_args(argv)
    emulator = Emulator(
        project_id=args.project_id,
        region=args.region,
        fleet=Fleet.seeded(args.desktops, seed=args.seed),
        host=args.host,
        port=args.port,
        latency=args.latency,
        verbose=not args.quiet,
    )
    with emulator:
        try:
            print(banner(emulator), flush=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
