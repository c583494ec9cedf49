"""OBS adapter: put, get and list the run objects, with Huawei's official OBS SDK (esdk-obs-python).

OBS signs requests its own way (not SDK-HMAC-SHA256), so the official SDK signs them. It is imported here, and
this module only when STATE_BUCKET is set: a function without history never pays for it. The SDK makes its own
HTTP calls, outside the client's watchdog: each call here runs on a worker thread and is given up (as an error)
when its time is up, so that a stalling OBS can delay the invocation by that much and no more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout  # not the built-in one before Python 3.11
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .client import Credentials
from .errors import ApiError
from .settings import is_loopback

T = TypeVar("T")
CALL_SECONDS = 20.0  # one OBS call at most, when the deadline is further away
PAGE = 1000  # ListObjects' largest page
MAX_PAGES = 200  # 200,000 keys: 40 days of runs many times over; a listing past it is not believed
MAX_OBJECT_BYTES = 16 * 1024 * 1024  # a run object is well under 1 MB: one larger is not read to the end


class ObsStore:
    """One bucket and key prefix, reached with the invocation's credentials."""

    def __init__(self, endpoint: str, bucket: str, credentials: Credentials, seconds: float = CALL_SECONDS) -> None:
        from obs import ObsClient  # the official SDK: only when state is configured

        host = urlsplit(endpoint).hostname or ""
        self.bucket = bucket
        self.seconds = max(1.0, seconds)
        self._client = ObsClient(
            access_key_id=credentials.ak,
            secret_access_key=credentials.sk,
            security_token=credentials.token,
            server=endpoint,
            path_style=is_loopback(host),  # the local emulator has no per-bucket host names
            signature="obs",
            is_signature_negotiation=False,
            ssl_verify=True,
            timeout=int(self.seconds),
            max_retry_count=0,  # no retry: an OBS failure costs the run its history, never its report
        )

    def put(self, key: str, data: bytes) -> None:
        self._call("obs PutObject", lambda: self._client.putContent(self.bucket, key, content=data))

    def get(self, key: str) -> bytes:
        answer = self._call("obs GetObject", lambda: _read_whole(self._client.getObject(self.bucket, key)))
        return bytes(answer.body)

    def keys(self, prefix: str, marker: str | None = None) -> Iterator[str]:
        """Every key under `prefix`, in key order, after `marker` (exclusive)."""
        for _ in range(MAX_PAGES):
            page = self._call(
                "obs ListObjects",
                lambda m=marker: self._client.listObjects(self.bucket, prefix=prefix, marker=m, max_keys=PAGE),
            ).body
            keys = [content.key for content in page.contents or []]
            yield from keys
            if not page.is_truncated or not keys:
                return
            following = str(page.next_marker or keys[-1])
            if marker is not None and following <= marker:  # a listing that would go round for ever
                raise ApiError("obs ListObjects", "the listing does not move past its marker; not believed")
            marker = following
        raise ApiError("obs ListObjects", f"more than {MAX_PAGES * PAGE:,} keys under {prefix}; not believed")

    def _call(self, name: str, action: Callable[[], Any]) -> Any:
        future: Future[Any] = Future()

        def run() -> None:
            try:
                future.set_result(action())
            except BaseException as exc:  # handed to the caller as it is
                future.set_exception(exc)

        threading.Thread(target=run, name="obs-call", daemon=True).start()
        try:
            answer = future.result(timeout=self.seconds)
        except FutureTimeout:
            raise ApiError(name, f"no answer within {self.seconds:.0f} s", retryable=True) from None
        except ApiError:
            raise
        except Exception as exc:
            raise ApiError(name, f"failed ({type(exc).__name__})", retryable=True) from None
        if answer.status >= 300:
            raise ApiError(
                name,
                str(answer.errorMessage or answer.reason or "refused"),
                status=answer.status,
                code=str(answer.errorCode) if answer.errorCode else None,
                request_id=str(answer.requestId) if answer.requestId else None,
            )
        return answer


def _read_whole(answer: Any) -> Any:
    """GetObject's answer with its body read (at most MAX_OBJECT_BYTES), in place of the stream."""
    if answer.status >= 300:
        return answer
    stream, chunks, size = answer.body.response, [], 0
    try:
        while chunk := stream.read(64 * 1024):
            size += len(chunk)
            if size > MAX_OBJECT_BYTES:
                raise ApiError("obs GetObject", f"an object over {MAX_OBJECT_BYTES:,} bytes: not read to the end")
            chunks.append(chunk)
    finally:
        stream.close()
    answer.body = b"".join(chunks)
    return answer
