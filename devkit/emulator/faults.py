"""Faults the emulator can be told to inject: the cloud's documented failures, on demand."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


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
class Injected:
    kind: str
    fault: Fault
    left: int
    query: dict[str, str] | None = None  # only calls whose query has these values (a page's offset, say)

    def applies(self, kind: str, query: list[tuple[str, str]]) -> bool:
        if self.kind not in (kind, "any"):
            return False
        return self.query is None or self.query.items() <= dict(query).items()
