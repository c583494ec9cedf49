"""Every call bounded as a whole, from connect to the last byte of the answer.

requests' timeouts bound the connect and each socket read, not the call: a gateway that trickles its status line,
its headers or its body one byte at a time holds a call (and the invocation) for as long as it likes. Here a
watchdog thread shuts the call's socket down when the call's time is up, whatever it is blocked in; the call then
fails at once, and the client reports it as an answer that did not arrive in time.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import requests.adapters
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class Watch:
    """One call's time limit; `expired` once the watchdog shut its socket."""

    def __init__(self, ends: float) -> None:
        self.ends = ends
        self.expired = False
        self.fd: int | None = None
        self.done = False
        self.lock = threading.Lock()

    def attach(self, fd: int) -> None:
        with self.lock:
            self.fd = fd
            if self.expired:
                _shutdown(fd)

    def expire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.expired = True
            if self.fd is not None:
                _shutdown(self.fd)


def _shutdown(fd: int) -> None:
    """Shut a socket down by its descriptor: a TLS socket owns the descriptor its plain socket had."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return
    try:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    finally:
        sock.detach()  # the connection still owns the descriptor: it closes it itself


class _Watchdog:
    """One daemon thread for every call in flight, waking at the earliest limit."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, watch: Watch) -> None:
        with self._wake:
            heapq.heappush(self._heap, (watch.ends, next(self._order), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="call-watchdog", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)  # finished calls leave as they reach the top
                if not self._heap:
                    self._wake.wait()
                    continue
                ends, _, watch = self._heap[0]
                left = ends - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                    continue
                heapq.heappop(self._heap)
            watch.expire()


_watchdog = _Watchdog()
_current = threading.local()  # the Watch of the call this thread is making


@contextmanager
def bounded(seconds: float) -> Iterator[Watch]:
    """Run one call within `seconds`: past them its socket is shut down, and `watch.expired` says so."""
    watch = Watch(time.monotonic() + max(0.0, seconds))
    _current.watch = watch
    _watchdog.add(watch)
    try:
        yield watch
    finally:
        with watch.lock:
            watch.done = True
        _current.watch = None


def _attach(sock: Any) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None and sock is not None:
        with suppress(OSError):
            watch.attach(sock.fileno())


class _Watched:
    """Hands the call's socket to its Watch: a new one as it is made, a kept-alive one as it is reused."""

    sock: Any

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        _attach(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _attach(self.sock)
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class BoundedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with watched connections; use it within `bounded(seconds)`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
