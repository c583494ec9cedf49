"""The misbehaving cloud: Workspace and SMN as Huawei documents them, served on raw sockets so that a test can
make one route lie, stall or leak down to the byte.

devkit/emulator is the faithful cloud (it checks signatures and enforces the documented limits); this one checks
nothing and misbehaves when told to. It serves, for any project id P:

- GET  /v2/P/desktops?offset=&limit=                      ListDesktops        ("list")
- GET  /v2/P/desktops/detail?desktop_id=..&offset=&limit=  ListDesktopsDetail  ("detail")
- POST /v2/P/sysprep {"desktop_ids": [...]}                CheckSysprepInfo    ("sysprep")
- GET  /v2/P/workspace-jobs/{job_id}                       ShowJob             ("job")
- POST /v2/P/notifications/topics/{urn}/publish            SMN PublishMessage  ("publish")

over a truthful fleet (UUIDs, every desktop compliant: version 3.1.2, both capabilities). Each route takes one
hook, `cloud.on(route, hook)`: `hook(cloud, request)` returns a Reply, a dict (a 200 JSON answer), or None for the
truthful answer, which `cloud.truth(request)` builds (and, for a publish, records). `request.n` counts the route's
earlier calls. A Reply can wait before its first byte, and trickle its status line and headers or its body one
byte at a time. Every request is recorded with the reply it got.
"""

from __future__ import annotations

import contextlib
import http
import json
import random
import socket
import socketserver
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

COMPLIANT = {"sysprep_version": "3.1.2", "support_hibernate": True, "support_update_route": True}
LIST_LIMIT = 1000


@dataclass
class Reply:
    """One answer. `body`: a dict or list is sent as JSON, str or bytes as they are."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the first byte
    head_every: float = 0.0  # > 0: the status line and headers go one byte every this many seconds
    body_every: float = 0.0  # > 0: the body goes one byte every this many seconds

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return b"" if self.body is None else json.dumps(self.body, ensure_ascii=False).encode()


@dataclass
class Request:
    method: str
    target: str  # exactly as sent: path and query, percent-encoded
    path: str  # percent-encoded, as sent
    query: list[tuple[str, str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    route: str | None
    n: int = 0  # calls of this route before this one
    reply: Reply | None = None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def param(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.query if k == name), default)

    @property
    def desktop_ids(self) -> list[str]:
        """The ids asked about: ListDesktopsDetail's desktop_id filter, or CheckSysprepInfo's body."""
        if self.route == "detail":
            return [v for k, v in self.query if k == "desktop_id"]
        body = self.json() if self.route == "sysprep" else None
        return list(body.get("desktop_ids") or []) if isinstance(body, dict) else []


Hook = Callable[["Hostile", Request], Reply | dict | None]


def _route(method: str, path: str) -> str | None:
    parts = path.split("/")[3:] if path.startswith("/v2/") else []
    if method == "GET" and parts == ["desktops"]:
        return "list"
    if method == "GET" and parts == ["desktops", "detail"]:
        return "detail"
    if method == "POST" and parts == ["sysprep"]:
        return "sysprep"
    if method == "GET" and len(parts) == 2 and parts[0] == "workspace-jobs":
        return "job"
    if method == "POST" and len(parts) == 4 and parts[:2] == ["notifications", "topics"] and parts[3] == "publish":
        return "publish"
    return None


class Hostile:
    """The server, its fleet, its hooks and its records; a context manager that serves on a free local port."""

    def __init__(self, desktops: int = 2500, seed: int = 10) -> None:
        self.rows: dict[str, dict[str, Any]] = {}  # ListDesktops rows by id, in listing order
        self.infos: dict[str, dict[str, Any]] = {}  # CheckSysprepInfo entries by id
        self.jobs: dict[str, dict[str, Any]] = {}  # ShowJob answers by job id
        self.requests: list[Request] = []
        self.published: list[dict[str, Any]] = []  # publish bodies answered by the truth
        self.hooks: dict[str, Hook] = {}
        self.lock = threading.RLock()  # hooks and the truth run under it; waiting and sending do not
        self._random = random.Random(seed)
        self._counts: dict[str | None, int] = {}
        self._hurry = threading.Event()  # set: no more waiting, whatever the replies asked for
        self._connections: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), _Connection)
        self._server.cloud = self
        self.add(desktops)

    # The fleet ------------------------------------------------------------------------------------------------

    def add(self, count: int, **info: Any) -> list[str]:
        """Append `count` desktops (compliant unless `info` says otherwise); their ids."""
        with self.lock:
            ids = [str(uuid.UUID(int=self._random.getrandbits(128), version=4)) for _ in range(count)]
            for desktop_id in ids:
                n = len(self.rows)
                self.rows[desktop_id] = {
                    "desktop_id": desktop_id,
                    "computer_name": f"desk-{n:05d}",
                    "user_name": f"user{n:05d}",
                    "status": "ACTIVE",
                }
                self.infos[desktop_id] = {**COMPLIANT, **info}
            return ids

    def remove(self, ids: list[str]) -> None:
        with self.lock:
            for desktop_id in ids:
                self.rows.pop(desktop_id, None)
                self.infos.pop(desktop_id, None)

    @property
    def ids(self) -> list[str]:
        with self.lock:
            return list(self.rows)

    def add_job(self, desktop_ids: list[str], status: str = "SUCCESS") -> str:
        """A job that made these desktops (one sub-job each); its id."""
        job_id = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
        subs = [
            {"id": f"{job_id}-{i}", "status": status, "entities": {"desktop_id": d}} for i, d in enumerate(desktop_ids)
        ]
        self.jobs[job_id] = {"id": job_id, "job_type": "CREATE_DESKTOP", "status": status, "sub_jobs": subs}
        return job_id

    # The truth ------------------------------------------------------------------------------------------------

    def page(self, offset: int, limit: int = LIST_LIMIT) -> dict[str, Any]:
        with self.lock:
            rows = list(self.rows.values())
            return {"total_count": len(rows), "desktops": [dict(r) for r in rows[offset : offset + limit]]}

    def truth(self, request: Request) -> Reply:
        """The documented, truthful answer to `request`."""
        with self.lock:
            if request.route == "list":
                return Reply(body=self.page(int(request.param("offset") or 0), int(request.param("limit") or 10)))
            if request.route == "detail":
                rows = [dict(self.rows[d]) for d in dict.fromkeys(request.desktop_ids) if d in self.rows]
                return Reply(body={"desktops": rows, "total_count": len(rows)})
            if request.route == "sysprep":
                ids = [d for d in request.desktop_ids if d in self.infos]
                return Reply(body={"sysprep_infos": [{"desktop_id": d, **self.infos[d]} for d in ids]})
            if request.route == "job":
                job = self.jobs.get(unquote(request.path.rsplit("/", 1)[1]))
                if job is None:
                    return Reply(404, {"error_code": "WKS.0001", "error_msg": "The job does not exist."})
                return Reply(body=job)
            if request.route == "publish":
                self.published.append(request.json())
                return Reply(body={"request_id": uuid.uuid4().hex, "message_id": uuid.uuid4().hex})
            return Reply(404, {"error_code": "APIG.0101", "error_msg": "The API does not exist."})

    # Scripting and records ------------------------------------------------------------------------------------

    def on(self, route: str, hook: Hook) -> None:
        self.hooks[route] = hook

    def calls(self, route: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.route == route]

    def release(self) -> None:
        """Stop every wait and trickle: what is left of each answer goes at once (to end a stuck test quickly)."""
        self._hurry.set()

    def _answer(self, request: Request) -> Reply:
        with self.lock:
            request.n = self._counts.get(request.route, 0)
            self._counts[request.route] = request.n + 1
            self.requests.append(request)
            hook = self.hooks.get(request.route or "")
            reply = hook(self, request) if hook else None
            if reply is None:
                reply = self.truth(request)
            elif isinstance(reply, dict):
                reply = Reply(body=reply)
            request.reply = reply
            return reply

    # Serving --------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Hostile:
        threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hurry.set()
        self._server.shutdown()
        self._server.server_close()
        with self.lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def _send(self, conn: socket.socket, data: bytes, every: float) -> None:
        if every <= 0:
            conn.sendall(data)
            return
        for i in range(len(data)):
            if self._hurry.is_set():
                conn.sendall(data[i:])
                return
            conn.sendall(data[i : i + 1])
            self._hurry.wait(every)

    def _reply(self, conn: socket.socket, reply: Reply) -> None:
        body = reply.payload()
        try:
            phrase = http.HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = "Unknown"
        headers = {
            "Content-Type": "application/json;charset=UTF-8",
            "Content-Length": str(len(body)),
            "X-Request-Id": uuid.uuid4().hex,
            **reply.headers,
        }
        head = f"HTTP/1.1 {reply.status} {phrase}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        if reply.delay:
            self._hurry.wait(reply.delay)
        if reply.head_every <= 0 and reply.body_every <= 0:
            conn.sendall(head.encode("latin-1") + body)  # one write: no wait on a delayed ACK between head and body
            return
        self._send(conn, head.encode("latin-1"), reply.head_every)
        self._send(conn, body, reply.body_every)


def _read(stream: Any) -> Request | None:
    """One HTTP/1.1 request from the connection, or None when the client closed it."""
    line = stream.readline(65536)
    if not line.strip():
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (header := stream.readline(65536)) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = stream.read(int(headers.get("content-length") or 0))
    parts = urlsplit(target)
    query = parse_qsl(parts.query, keep_blank_values=True)
    return Request(method, target, parts.path, query, headers, body, _route(method, parts.path))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    cloud: Hostile


class _Connection(socketserver.BaseRequestHandler):
    """Keep-alive: requests on one connection are answered in turn until the client closes it."""

    server: _Server

    def handle(self) -> None:
        cloud, conn = self.server.cloud, self.request
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # trickled bytes leave one by one, at once
        with cloud.lock:
            cloud._connections.add(conn)
        stream = conn.makefile("rb")
        try:
            while (request := _read(stream)) is not None:
                cloud._reply(conn, cloud._answer(request))
        except (OSError, ValueError):
            pass  # the client gave up (or sent garbage): nothing to answer
        finally:
            with cloud.lock:
                cloud._connections.discard(conn)


# Misbehaviours ------------------------------------------------------------------------------------------------


@dataclass
class Listing:
    """A ListDesktops script; each field is one way to lie, the defaults tell the truth."""

    short: dict[int, int] = field(default_factory=dict)  # offset -> rows that page loses from its end...
    short_times: int | None = None  # ...on its first this many reads (None: on every read)
    empty: bool = False  # every page empty, whatever total_count says
    repeat: int | None = None  # the row at this fleet index is replaced by a second copy of the row before it
    ignore_offset: bool = False  # every page is the first
    total: Callable[[int], int] | None = None  # the total_count answered, from the true one
    before: Callable[[Hostile, int], None] | None = None  # run before answering call n (to grow or shrink the fleet)
    _reads: dict[int, int] = field(default_factory=dict)

    def __call__(self, cloud: Hostile, request: Request) -> Reply:
        if self.before is not None:
            self.before(cloud, request.n)
        offset, limit = int(request.param("offset") or 0), int(request.param("limit") or 10)
        page = cloud.page(0 if self.ignore_offset else offset, limit)
        true_total, rows = page["total_count"], page["desktops"]
        if self.empty:
            rows = []
        if self.repeat is not None and offset < self.repeat < offset + len(rows):
            rows[self.repeat - offset] = dict(rows[self.repeat - offset - 1])
        reads = self._reads[offset] = self._reads.get(offset, 0) + 1
        if offset in self.short and (self.short_times is None or reads <= self.short_times):
            rows = rows[: max(0, len(rows) - self.short[offset])]
        total = self.total(true_total) if self.total else true_total
        return Reply(body={"total_count": total, "desktops": rows})


def trickle(head_every: float = 0.0, body_every: float = 0.0) -> Hook:
    """The truthful answer, its head or its body sent one byte at a time."""

    def hook(cloud: Hostile, request: Request) -> Reply:
        reply = cloud.truth(request)
        reply.head_every, reply.body_every = head_every, body_every
        return reply

    return hook


def refuse(status: int, code: str, message: str, delay: float = 0.0) -> Hook:
    """Every call refused with the gateway's error shape, after `delay` seconds."""
    return lambda cloud, request: Reply(
        status, {"error_code": code, "error_msg": message, "request_id": uuid.uuid4().hex}, delay=delay
    )


def echoes(request: Request) -> dict[str, str]:
    """The request's X-Security-Token as a careless service would echo it (raw, URL-encoded both ways,
    JSON-escaped with its slashes escaped too, wrapped at 64 columns), and its Authorization header."""
    token = request.headers.get("x-security-token", "")
    return {
        "raw": token,
        "url": quote(token, safe=""),
        "plus": quote_plus(token),
        "json": json.dumps(token)[1:-1].replace("/", "\\/"),
        "wrapped": "\n".join(token[i : i + 64] for i in range(0, len(token), 64)),
        "authorization": request.headers.get("authorization", ""),
    }
