"""HTTP plumbing shared by every emulated service: the server, answers, endpoints, and the gateway's signature check.

An `Endpoint` says how requests reach a service: what authenticates them (the API gateway's SDK-HMAC-SHA256 check
here, or a service's own, such as OBS's), whether their path starts with the project id, and the largest body taken.
"""

from __future__ import annotations

import hmac
import json
import re
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

if TYPE_CHECKING:
    from .core import Emulator

MAX_DATE_SKEW = 15 * 60  # seconds; the gateway refuses an X-Sdk-Date further off
MAX_REQUEST_BYTES = 2 * 1024 * 1024  # above any valid request (a 256 KB message, JSON-escaped)

Keys = Mapping[str, tuple[str, str | None]]  # access key -> (secret key, security token or None for a permanent key)


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json;charset=UTF-8"
    close: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)  # sent besides Content-Type and Content-Length
    after: Callable[[], None] | None = None  # run once the answer is sent (FunctionGraph starts its runs so)


def json_answer(status: int, payload: Any, *, close: bool = False) -> Answer:
    return Answer(status, json.dumps(payload, ensure_ascii=False).encode(), close=close)


def gateway_error(status: int, code: str, message: str, request_id: str, close: bool = False) -> Answer:
    """The API gateway's own errors (APIG.*): {error_code, error_msg, request_id}."""
    return json_answer(status, {"error_code": code, "error_msg": message, "request_id": request_id}, close=close)


@dataclass(frozen=True)
class Request:
    """One request as a service handler sees it, once it passed the gateway's checks."""

    method: str
    path: str
    query: list[tuple[str, str]]
    body: bytes
    params: tuple[str, ...]  # the route's path parameters after the project id (if any), percent-decoded
    project_id: str | None  # None for a service whose paths carry no project id (OBS)
    request_id: str
    headers: Mapping[str, str] = field(default_factory=dict)
    account: str = ""  # the domain id of the account whose keys signed it ("" if none the emulator knows)

    def json(self) -> Any:
        return load_json(self.body)


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping at exit never holds the process
    # A cloud's gateway accepts what comes; socketserver's backlog of 5 drops connections when many function
    # processes start at once (an estate's fan-out), each drop costing the client a 1 s SYN retry.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the function's requests.Session uses it
    timeout = 60  # an idle keep-alive connection ends on its own
    server: Server
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

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # Emulator(verbose=True) prints its own one line per call


def read_body(request: Handler, error: Callable[..., Answer], limit: int = MAX_REQUEST_BYTES) -> bytes | Answer:
    if "chunked" in (request.headers.get("Transfer-Encoding") or "").lower():
        return error(411, "send a Content-Length", close=True)
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return error(400, "bad Content-Length", close=True)
    if length < 0 or length > limit:
        return error(413, f"body over {limit} bytes", close=True)
    return request.rfile.read(length) if length else b""


def send(request: Handler, answer: Answer) -> None:
    try:
        request.send_response(answer.status)
        request.send_header("Content-Type", answer.content_type)
        request.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            request.send_header(name, value)
        if answer.close:
            request.send_header("Connection", "close")
            request.close_connection = True
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(answer.body)
    except OSError:  # the client gave up (its timeout) before the answer
        request.close_connection = True


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """The query as the signer saw it: percent-decoded pairs, in order ('+' stays '+', as the SDK encodes)."""
    pairs = []
    for item in raw_query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def header_text(value: str) -> str:
    """http.server decodes header bytes as Latin-1; the signer signed the UTF-8 text."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


_AUTHORIZATION = re.compile(r"^SDK-HMAC-SHA256 Access=([^,\s]+), SignedHeaders=([^,\s]+), Signature=([0-9a-f]+)$")
_ACCESS = re.compile(r"^(?:SDK-HMAC-SHA256 Access=([^,\s]+),|(?:OBS|AWS) ([^:\s]+):)")


def access_key_of(request: Handler) -> str | None:
    """The access key a request claims in its Authorization header (SDK-HMAC-SHA256, or OBS's own schemes)."""
    claimed = _ACCESS.match((request.headers.get("Authorization") or "").strip())
    return None if claimed is None else claimed.group(1) or claimed.group(2)


@dataclass(frozen=True)
class _Keys:
    """What huaweicloudsdkcore's Signer reads from credentials."""

    ak: str
    sk: str = field(repr=False)


def signature_problem(
    request: Handler, raw_path: str, raw_query: str, body: bytes, keys: Keys, now: float
) -> str | None:
    """None if the request is signed SDK-HMAC-SHA256 as the gateway wants, else what is wrong with it."""
    authorization = (request.headers.get("Authorization") or "").strip()
    if not authorization:
        return "no Authorization header"
    parsed = _AUTHORIZATION.match(authorization)
    if parsed is None:
        return "Authorization is not 'SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...'"
    access_key, signed_headers = parsed.group(1), parsed.group(2).split(";")
    if access_key not in keys:
        return "unknown access key"
    secret_key, token = keys[access_key]
    for required in ("host", "x-sdk-date"):
        if required not in signed_headers:
            return f"header {required} is not signed"

    date = request.headers.get("X-Sdk-Date") or ""
    try:
        signed_at = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return f"X-Sdk-Date {date!r} is not in the format 20260101T000000Z"
    if abs(now - signed_at) > MAX_DATE_SKEW:
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
        headers[name] = header_text(value)
    # Rebuild the request and sign it as the SDK does: any difference in what was signed shows here.
    rebuilt = SdkRequest(
        method=request.command,
        schema="http",
        host=request.headers.get("Host") or "",
        resource_path=raw_path,
        query_params=query_pairs(raw_query),
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


# Endpoints -------------------------------------------------------------------------------------------


class Authentication(Protocol):
    """How an endpoint authenticates a request: None if it may go on to its service, else the endpoint's refusal."""

    def refusal(self, request: Handler, call: Request, raw_query: str, keys: Keys, now: float) -> Answer | None: ...


class GatewaySignature:
    """The API gateway's check in front of Workspace, SMN and CES: SDK-HMAC-SHA256 as huaweicloudsdkcore signs,
    refused with APIG.0301 (401)."""

    def refusal(self, request: Handler, call: Request, raw_query: str, keys: Keys, now: float) -> Answer | None:
        problem = signature_problem(request, call.path, raw_query, call.body, keys, now)
        if problem is None:
            return None
        message = f"Incorrect IAM authentication information: {problem}"
        return gateway_error(401, "APIG.0301", message, call.request_id)


@dataclass(frozen=True)
class Endpoint:
    """How requests reach a service's routes.

    `authentication` checks each request before its service sees it; `project_in_path` says whether a route's first
    group is the project id (checked against the emulator's); `max_request_bytes` is the largest body read;
    `claims`, if given, decides which requests matching a route's pattern are the service's at all (OBS shares the
    port with services whose paths could look like bucket names): the others go on to the next route."""

    authentication: Authentication
    project_in_path: bool = True
    max_request_bytes: int = MAX_REQUEST_BYTES
    claims: Callable[[Handler, tuple[str, ...]], bool] | None = None


GATEWAY = Endpoint(GatewaySignature())  # Workspace's and SMN's: the API gateway, the project id first in the path
