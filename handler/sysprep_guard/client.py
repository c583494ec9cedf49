"""The signed HTTP client: one requests Session, every call signed SDK-HMAC-SHA256, errors made readable."""

from __future__ import annotations

import contextvars
import json
import math
import os
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import requests.utils
import urllib3.exceptions
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from .errors import ApiError, CredentialsError
from .logs import log, redact, register_secret
from .permissions import ACTIONS
from .timing import Clock, Deadline

MAX_ANSWER_BYTES = 8 * 1024 * 1024  # no documented answer comes near this; a larger one is refused unread
CONNECT_TIMEOUT, READ_TIMEOUT = 3.05, 30.0  # seconds, when the deadline is further away


@dataclass(frozen=True)
class Credentials:
    ak: str
    sk: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


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


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in tries and by the deadline."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 8.0

    def delay(self, retry: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2**retry))


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


@dataclass
class _Invocation:
    credentials: Credentials | None
    deadline: Deadline | None
    rejected: ApiError | None = None  # a 401 for these credentials: no further call may use them


class SignedClient:
    """Signs and sends JSON calls, retrying what may succeed; every failure becomes an ApiError naming the call."""

    def __init__(
        self,
        project_id: str,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy = RetryPolicy(),
        max_concurrency: int = 8,
    ) -> None:
        self.project_id = project_id
        self.session = session or requests.Session()
        # The environment (proxies, CA bundle) is read once per endpoint, not on every call as requests would
        # (about 1 ms of CPU a call), and a ~/.netrc can never put its credentials in place of the signature.
        self.session.trust_env = False
        self._environment: dict[str, dict[str, Any]] = {}
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max_concurrency)
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
    def rejected(self) -> ApiError | None:
        return self._current.rejected

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
            if self.rejected is not None:
                # The gateway locks a key after 5 bad signatures in a row: one rejection is enough to stop.
                raise ApiError(
                    call,
                    f"not attempted: these credentials were just rejected ({self.rejected.short})",
                    status=self.rejected.status,
                    code=self.rejected.code,
                )
            budget = self._budget(keep)
            if budget < MIN_ATTEMPT_SECONDS:
                raise ApiError(call, "not attempted: the invocation's deadline is too close", out_of_time=True)
            if not self.throttle.acquire(timeout=min(budget - MIN_ATTEMPT_SECONDS, 3600)):
                raise ApiError(call, "not attempted: no call slot before the deadline", out_of_time=True)
            throttled = False
            try:
                return self._attempt(call, method, endpoint, path, query, body, self._budget(keep))
            except ApiError as exc:
                throttled = exc.throttled
                if exc.status == 401:
                    self._current.rejected = exc
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
        # A read timeout bounds each socket read, not the whole answer. Connecting and the headers take at most
        # two thirds; _read_capped stops once a read ends after `ends` with more to come, one read past it at worst.
        connect, read = min(CONNECT_TIMEOUT, budget / 3), min(READ_TIMEOUT, budget / 3)
        ends = self.clock.now() + budget / 3
        try:
            with self.session.request(
                method,
                url,
                headers=headers,
                data=data,
                timeout=(connect, read),
                stream=True,
                allow_redirects=False,
                **self._settings_for(endpoint),
            ) as answer:
                raw = _read_capped(answer, call, lambda: self.clock.now() > ends)
        except requests.Timeout as exc:
            raise ApiError(call, f"no answer in time ({type(exc).__name__})", retryable=True) from None
        except requests.RequestException as exc:
            raise ApiError(call, f"connection failed ({type(exc).__name__})", retryable=True) from None
        request_id = answer.headers.get("X-Request-Id")
        if answer.status_code >= 300:
            raise _error(call, answer.status_code, raw, request_id)
        try:
            return json.loads(raw) if raw else None
        except (ValueError, RecursionError):
            raise ApiError(
                call, "answer is not JSON: " + _snippet(raw), status=answer.status_code, request_id=request_id
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
        if self.credentials.token:
            request.header_params["X-Security-Token"] = self.credentials.token
        signed = Signer(self.credentials).sign(request)
        return f"{parts.scheme}://{parts.netloc}{signed.uri}", dict(signed.header_params), data


def _read_capped(answer: requests.Response, call: str, late: Callable[[], bool]) -> bytes:
    """The body, read one socket read at a time: a buffered read would wait for a whole chunk however slowly it
    trickles in, so the clock is checked after every read, and reading stops once it is late with more to come."""
    length = answer.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > MAX_ANSWER_BYTES:
        raise ApiError(call, f"answer of {int(length):,} bytes, over {MAX_ANSWER_BYTES:,}: refused unread")
    raw, chunks, size = answer.raw, [], 0
    try:
        while chunk := raw.read1(16 * 1024, decode_content=True):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise ApiError(
                    call, f"answer larger than {MAX_ANSWER_BYTES:,} bytes: refused", status=answer.status_code
                )
            chunks.append(chunk)
            if late() and raw.length_remaining != 0:  # 0: all that Content-Length announced is here
                raise ApiError(call, "the answer was too slow to arrive in time", retryable=True)
    except urllib3.exceptions.ReadTimeoutError:
        raise ApiError(call, "no answer in time (ReadTimeout)", retryable=True) from None
    except urllib3.exceptions.HTTPError as exc:
        raise ApiError(call, f"connection failed ({type(exc).__name__})", retryable=True) from None
    return b"".join(chunks)


def _snippet(raw: bytes, limit: int = 120) -> str:
    # Scrubbed before it is cut: a secret the cut went through would no longer be recognised.
    text = " ".join(redact(raw.decode("utf-8", "replace")).split())
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def _error(call: str, status: int, raw: bytes, request_id: str | None) -> ApiError:
    """Parse the three error shapes: Workspace {error_code, error_msg}, gateway APIG.*, SMN {code, message}."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    code, message = None, None
    if isinstance(body, dict):
        code = body.get("error_code") or body.get("code")
        message = body.get("error_msg") or body.get("message") or body.get("error_detail")
        request_id = request_id or body.get("request_id")
    code = str(code) if code else None
    return ApiError(
        call,
        str(message) if message else "unexpected answer: " + _snippet(raw),
        status=status,
        code=code,
        request_id=str(request_id) if request_id else None,
        retryable=status in _RETRY_STATUS or code == THROTTLED,
    )
