"""A stand-in for FunctionGraph's context object, with the documented methods."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping


class Context:
    def __init__(
        self,
        user_data: Mapping[str, str] | None = None,
        *,
        access_key: str = "",
        secret_key: str = "",
        security_token: str = "",
        timeout_seconds: float = 900,
        request_id: str | None = None,
        function_name: str = "sysprep-guard",
        package: str = "default",
        memory_mb: int = 256,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._user_data = dict(user_data or {})
        self._keys = (access_key, secret_key, security_token)
        self._request_id = request_id or str(uuid.uuid4())
        self._function_name = function_name
        self._package = package
        self._memory_mb = memory_mb
        self._now = now
        self._ends_at = now() + timeout_seconds

    def getRequestID(self) -> str:
        return self._request_id

    def getRemainingTimeInMilliSeconds(self) -> int:
        return max(0, int((self._ends_at - self._now()) * 1000))

    def getSecurityAccessKey(self) -> str:
        return self._keys[0]

    def getSecuritySecretKey(self) -> str:
        return self._keys[1]

    def getSecurityToken(self) -> str:
        return self._keys[2]

    def getUserData(self, key: str) -> str | None:
        return self._user_data.get(key)

    def getFunctionName(self) -> str:
        return self._function_name

    def getVersion(self) -> str:
        return "latest"

    def getPackage(self) -> str:
        return self._package

    def getMemorySize(self) -> int:
        return self._memory_mb

    def getLogger(self) -> logging.Logger:
        return logging.getLogger(self._function_name)
