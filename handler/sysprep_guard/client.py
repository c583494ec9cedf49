"""The signed HTTP client: one requests Session, every call signed SDK-HMAC-SHA256, errors made readable."""

from __future__ import annotations

import contextvars
import json
import math
import os
import random
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import requests
import requests.utils
import urllib3.exceptions
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from .errors import ApiError, CredentialsError
from .logs import log, register_secret
from .permissions import ACTIONS
from .text import clip
from .timing import Clock, Deadline
from .transport import BoundedAdapter, bounded

MAX_ANSWER_BYTES = 8 * 1024 * 1024  # no documented answer comes near this; a larger one is refused unread
CONNECT_TIMEOUT, READ_TIMEOUT = 3.05, 30.0  # seconds, when the deadline is further away
CALL_TIMEOUT = 60.0  # a whole call, connect to last byte, when the deadline is further away


# Value objects are NamedTuples, not dataclasses: @dataclass generates and compiles its methods at import, on every
# cold start.
class Credentials(NamedTuple):
    ak: str
    sk: str
    token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(ak={self.ak!r})"  # never the secret key or the token


def resolve_credentials(context: Any, environ: Mapping[str, str] | None = None) -> Credentials:
    """The agency's temporary keys from the context; outside FunctionGraph, HUAWEICLOUD_SDK_*."""
    environ = os.environ if environ is None else environ

    def ask(name: str) -> str:
        method = getattr(context, name, None)
        value = method() if callable(method) else None
        return value.strip() if isinstance(value, str) else ""

    ak, sk, token = ask("getSecurityAccessKey"), ask("getSecuritySecretKey"), ask("getSecurityToken")
    if not (ak and sk):
        ak = environ.get("HUAWEICLOUD_SDK_AK", "").strip()
        sk = environ.get("HUAWEICLOUD_SDK_SK", "").strip()
        token = environ.get("HUAWEICLOUD_SDK_SECURITY_TOKEN", "").strip()
    if not (ak and sk):
        raise CredentialsError(
            "no credentials: give the function an agency (xrole) whose policy is docs/iam-policy.json "
            f"({', '.join(sorted(set(ACTIONS.values())))}); outside FunctionGraph set HUAWEICLOUD_SDK_AK and "
            "HUAWEICLOUD_SDK_SK (and HUAWEICLOUD_SDK_SECURITY_TOKEN for temporary keys)"
        )
    return Credentials(ak=ak, sk=sk, token=token or None)  # SignedClient.begin registers them with the logger


class RetryPolicy(NamedTuple):
    """Exponential backoff with full jitter, bounded in tries and by the deadline."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 8.0

    def delay(self, retry: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2**retry))


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=1)
_RETRY_STATUS = {429, 500, 502, 503, 504}
THROTTLED = "APIG.0308"
MIN_ATTEMPT_SECONDS = 1.0  # a call is not started with less time than this left


class Throttle:
    """Bounds the calls in flight (AIMD): halved after a throttled answer, grown back by one after as many
    successes in a row as the bound, so that speed never costs a throttling storm."""

    def __init__(self, maximum: int) -> None:
        self.maximum = self.limit = maximum
        self.in_flight = 0
        self._successes = 0
        self._cv = threading.Condition()

    def acquire(self, timeout: float) -> bool:
        with self._cv:
            if not self._cv.wait_for(lambda: self.in_flight < self.limit, timeout=timeout):
                return False
            self.in_flight += 1
            return True

    def release(self, throttled: bool) -> None:
        with self._cv:
            self.in_flight -= 1
            if throttled:
                self.limit, self._successes = max(1, self.limit // 2), 0
            else:
                self._successes += 1
                if self._successes >= self.limit and self.limit < self.maximum:
                    self.limit, self._successes = self.limit + 1, 0
            self._cv.notify_all()


class _Invocation:
    def __init__(self, credentials: Credentials | None, deadline: Deadline | None) -> None:
        self.credentials = credentials
        self.deadline = deadline
        # A 401 for these credentials: no further call may use them (by _scope: IAM's refusal is IAM's alone).
        self.rejected: dict[str, ApiError] = {}


ALL = "*"


def _scope(call: str) -> str:
    """What a 401 to this call rules out. Workspace, SMN, Cloud Eye and FunctionGraph answer through the API
    gateway (APIG.* error codes), which checks the one signature: a key it refuses is refused everywhere. IAM
    answers in its own (Keystone) form, and may refuse an agency's session keys only the right to ask for another
    account's keys (not verified): that rules out IAM alone, and one target, not the run."""
    return "iam" if call.startswith("iam ") else ALL


class SignedClient:
    """Signs and sends JSON calls, retrying what may succeed; every failure becomes an ApiError naming the call."""

    def __init__(
        self,
        project_id: str,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_concurrency: int = 8,
    ) -> None:
        self.project_id = project_id
        self.session = session or requests.Session()
        # The environment (proxies, CA bundle) is read once per endpoint, not on every call as requests would
        # (about 1 ms of CPU a call), and a ~/.netrc can never put its credentials in place of the signature.
        self.session.trust_env = False
        self._environment: dict[str, dict[str, Any]] = {}
        adapter = BoundedAdapter(pool_connections=4, pool_maxsize=max_concurrency)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.throttle = Throttle(max_concurrency)
        self.clock = clock or Clock()
        self.retry = retry
        # Per invocation, in a context variable: an instance serving invocations concurrently keeps each one's
        # keys and deadline apart, and the pool's threads (started with a copy of the context) share them. A
        # thread started without that copy sees the latest invocation.
        self._invocation: contextvars.ContextVar[_Invocation] = contextvars.ContextVar(f"client-{id(self)}")
        self._latest = _Invocation(None, None)

    def begin(self, credentials: Credentials, deadline: Deadline | None) -> None:
        """Per invocation: the agency's keys rotate under a warm instance, and each invocation has its deadline."""
        for secret in (credentials.ak, credentials.sk, credentials.token):
            register_secret(secret)  # whoever built them, they are masked wherever they would be logged
        self._latest = _Invocation(credentials, deadline)
        self._invocation.set(self._latest)

    @property
    def credentials(self) -> Credentials | None:
        return self._current.credentials

    @credentials.setter
    def credentials(self, credentials: Credentials) -> None:
        self.begin(credentials, self._current.deadline)

    @property
    def deadline(self) -> Deadline | None:
        return self._current.deadline

    @property
    def _current(self) -> _Invocation:
        return self._invocation.get(self._latest)

    def call(
        self,
        call: str,
        method: str,
        endpoint: str,
        path: str,
        *,
        query: Iterable[tuple[str, str | int]] = (),
        body: Any = None,
        keep: float = 0.0,
    ) -> Any:
        """Send the call, retried on throttling, 5xx and lost connections; `keep` seconds of the deadline are
        left untouched (for what must still happen after it, such as publishing)."""
        retry = 0
        while True:
            self._refuse_if_rejected(call)
            budget = self._budget(keep)
            if budget < MIN_ATTEMPT_SECONDS:
                raise ApiError(call, "not attempted: the invocation's deadline is too close", out_of_time=True)
            if not self.throttle.acquire(timeout=min(budget - MIN_ATTEMPT_SECONDS, 3600)):
                raise ApiError(call, "not attempted: no call slot before the deadline", out_of_time=True)
            throttled = False
            try:
                self._refuse_if_rejected(call)  # again: another call may have been refused meanwhile
                return self._attempt(call, method, endpoint, path, query, body, self._budget(keep))
            except ApiError as exc:
                throttled = exc.throttled
                if exc.status == 401:
                    self._current.rejected[_scope(call)] = exc
                retry += 1
                if not exc.retryable or retry >= self.retry.attempts:
                    raise
                pause = self.retry.delay(retry - 1)
                if self._budget(keep) - pause < MIN_ATTEMPT_SECONDS:
                    raise
                log.warning("retrying", call=call, error=exc.short, retry=retry, pause=round(pause, 3))
            finally:
                self.throttle.release(throttled)
            self.clock.sleep(pause)

    def _refuse_if_rejected(self, call: str) -> None:
        """The gateway locks a key after 5 bad signatures in a row: one rejection is enough to stop."""
        rejected = self._current.rejected.get(ALL) or self._current.rejected.get(_scope(call))
        if rejected is not None:
            raise ApiError(
                call,
                f"not attempted: these credentials were just rejected ({rejected.short})",
                status=rejected.status,
                code=rejected.code,
            )

    def _settings_for(self, endpoint: str) -> dict[str, Any]:
        """The proxies and CA bundle the environment sets for this endpoint (TLS verification stays on)."""
        if endpoint not in self._environment:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            self._environment[endpoint] = {
                "proxies": requests.utils.get_environ_proxies(endpoint),
                "verify": bundle or True,
            }
        return self._environment[endpoint]

    def _budget(self, keep: float) -> float:
        return math.inf if self.deadline is None else self.deadline.left(keep)

    def _attempt(
        self,
        call: str,
        method: str,
        endpoint: str,
        path: str,
        query: Iterable[tuple[str, str | int]],
        body: Any,
        budget: float,
    ) -> Any:
        url, headers, data = self.sign(method, endpoint, path, query=query, body=body)
        # A third of the time left for the whole call, so that a retry still fits: connect, status line, headers
        # and body together (transport.bounded), each connect and socket read bounded too.
        whole = min(CALL_TIMEOUT, budget / 3)
        with bounded(whole) as watch:
            try:
                with self.session.request(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    timeout=(min(CONNECT_TIMEOUT, whole), min(READ_TIMEOUT, whole)),
                    stream=True,
                    allow_redirects=False,
                    **self._settings_for(endpoint),
                ) as answer:
                    raw = _read_capped(answer, call)
            except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                if watch.expired:
                    raise ApiError(call, "no complete answer in time", retryable=True) from None
                if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError)):
                    raise ApiError(call, f"no answer in time ({type(exc).__name__})", retryable=True) from None
                raise ApiError(call, f"connection failed ({type(exc).__name__})", retryable=True) from None
        request_id = answer.headers.get("X-Request-Id")
        if answer.status_code >= 300:
            raise _error(call, answer, raw, request_id)
        try:
            return json.loads(raw) if raw else None
        except (ValueError, RecursionError):
            raise ApiError(
                call, "answer is not JSON " + _described(answer, raw), status=answer.status_code, request_id=request_id
            ) from None

    def sign(
        self,
        method: str,
        endpoint: str,
        path: str,
        *,
        query: Iterable[tuple[str, str | int]] = (),
        body: Any = None,
    ) -> tuple[str, dict[str, str], bytes | None]:
        """The URL, headers and exact bytes to send (the signature covers them all)."""
        if self.credentials is None:
            raise CredentialsError("the client has no credentials for this invocation")
        parts = urlsplit(endpoint)
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() if body is not None else None
        headers = {"Content-Type": "application/json;charset=UTF-8"} if data is not None else {}
        request = SdkRequest(
            method=method,
            schema=parts.scheme,
            host=parts.netloc,
            resource_path=path,
            query_params=[(k, str(v)) for k, v in query],
            header_params=headers,
            body=data or "",
        )
        # What BasicCredentials.sign_request adds before signing; calling the Signer directly spares the import
        # of the SDK's credential providers (and their HTTP client), which the function never uses.
        request.header_params["X-Project-Id"] = self.project_id
        # The signing time, set here: left to the signer, it would call datetime.utcnow(), deprecated since 3.12.
        request.header_params["X-Sdk-Date"] = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        if self.credentials.token:
            request.header_params["X-Security-Token"] = self.credentials.token
        signed = Signer(self.credentials).sign(request)
        return f"{parts.scheme}://{parts.netloc}{signed.uri}", dict(signed.header_params), data


def _read_capped(answer: requests.Response, call: str) -> bytes:
    """The body, refused past MAX_ANSWER_BYTES (read one socket read at a time, so the cap holds as it arrives)."""
    length = answer.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > MAX_ANSWER_BYTES:
        raise ApiError(call, f"answer of {int(length):,} bytes, over {MAX_ANSWER_BYTES:,}: refused unread")
    raw, chunks, size = answer.raw, [], 0
    while chunk := raw.read1(16 * 1024, decode_content=True):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise ApiError(call, f"answer larger than {MAX_ANSWER_BYTES:,} bytes: refused", status=answer.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _described(answer: requests.Response, raw: bytes) -> str:
    """An answer that is not the documented JSON, described without copying it: it could echo anything back."""
    kind = (answer.headers.get("Content-Type") or "no content type").split(";")[0].strip()
    return f"({clip(kind, 40)}, {len(raw):,} bytes)"


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) else None


def _error(call: str, answer: requests.Response, raw: bytes, request_id: str | None) -> ApiError:
    """The documented error fields of the shapes (Workspace {error_code, error_msg}, gateway APIG.*, SMN
    {code, message}, CES {http_code, message: {code, details}}, IAM {error: {code, message, title}}), and nothing
    else of the body."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    code = message = None
    if isinstance(body, dict):
        nested = body.get("message") if isinstance(body.get("message"), dict) else {}  # CES: {message: {code, details}}
        if isinstance(body.get("error"), dict):  # IAM
            nested = body["error"]
        code = _text(body.get("error_code")) or _text(body.get("code")) or _text(nested.get("code"))
        message = (
            _text(body.get("error_msg"))
            or _text(body.get("message"))
            or _text(body.get("error_detail"))
            or _text(nested.get("details"))
            or _text(nested.get("message"))
        )
        request_id = request_id or _text(body.get("request_id"))
    status = answer.status_code
    return ApiError(
        call,
        message or "unexpected answer " + _described(answer, raw),
        status=status,
        code=code,
        request_id=request_id,
        retryable=status in _RETRY_STATUS or code == THROTTLED,
    )
