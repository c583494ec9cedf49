"""The signed HTTP client: one requests Session, every call signed SDK-HMAC-SHA256, errors made readable."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest

from .errors import ApiError, CredentialsError
from .logs import register_secret

MAX_ANSWER_BYTES = 8 * 1024 * 1024  # no documented answer comes near this; a larger one is refused unread
DEFAULT_TIMEOUT = (3.05, 30.0)  # connect, read (seconds)


@dataclass(frozen=True)
class Credentials:
    ak: str
    sk: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    source: str = "agency"


def resolve_credentials(context: Any, environ: Mapping[str, str] | None = None) -> Credentials:
    """The agency's temporary keys from the context; outside FunctionGraph, HUAWEICLOUD_SDK_*."""
    environ = os.environ if environ is None else environ

    def ask(name: str) -> str:
        method = getattr(context, name, None)
        value = method() if callable(method) else None
        return value.strip() if isinstance(value, str) else ""

    ak, sk, token, source = (
        ask("getSecurityAccessKey"),
        ask("getSecuritySecretKey"),
        ask("getSecurityToken"),
        "agency",
    )
    if not (ak and sk):
        ak = environ.get("HUAWEICLOUD_SDK_AK", "").strip()
        sk = environ.get("HUAWEICLOUD_SDK_SK", "").strip()
        token, source = (
            environ.get("HUAWEICLOUD_SDK_SECURITY_TOKEN", "").strip(),
            "environment",
        )
    if not (ak and sk):
        raise CredentialsError(
            "no credentials: give the function an agency (xrole) that grants workspace:desktops:getSysPrepInfo, "
            "workspace:desktops:list, Workspace job read and smn:topic:publish; outside FunctionGraph set "
            "HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK (and HUAWEICLOUD_SDK_SECURITY_TOKEN for temporary keys)"
        )
    for secret in (ak, sk, token):
        register_secret(secret)
    return Credentials(ak=ak, sk=sk, token=token or None, source=source)


class SignedClient:
    """Signs and sends JSON calls; turns every failure into an ApiError naming the call."""

    def __init__(self, project_id: str, session: requests.Session | None = None) -> None:
        self.project_id = project_id
        self.session = session or requests.Session()
        self.credentials: Credentials | None = None  # set per invocation: agency keys rotate

    def call(
        self,
        call: str,
        method: str,
        endpoint: str,
        path: str,
        *,
        query: Iterable[tuple[str, str | int]] = (),
        body: Any = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> Any:
        url, headers, data = self.sign(method, endpoint, path, query=query, body=body)
        try:
            with self.session.request(
                method,
                url,
                headers=headers,
                data=data,
                timeout=timeout,
                stream=True,
                allow_redirects=False,
            ) as answer:
                raw = _read_capped(answer, call)
        except requests.Timeout as exc:
            raise ApiError(call, f"timed out ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise ApiError(call, f"connection failed ({type(exc).__name__})") from None
        request_id = answer.headers.get("X-Request-Id")
        if answer.status_code >= 300:
            raise _error(call, answer.status_code, raw, request_id)
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ApiError(
                call,
                "answer is not JSON: " + _snippet(raw),
                status=answer.status_code,
                request_id=request_id,
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
        creds = BasicCredentials(self.credentials.ak, self.credentials.sk, self.project_id)
        if self.credentials.token:
            creds = creds.with_security_token(self.credentials.token)
        signed = creds.sign_request(request)
        return (
            f"{parts.scheme}://{parts.netloc}{signed.uri}",
            dict(signed.header_params),
            data,
        )


def _read_capped(answer: requests.Response, call: str) -> bytes:
    chunks, size = [], 0
    for chunk in answer.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise ApiError(
                call,
                f"answer larger than {MAX_ANSWER_BYTES} bytes, refused",
                status=answer.status_code,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _snippet(raw: bytes, limit: int = 120) -> str:
    text = " ".join(raw[:limit].decode("utf-8", "replace").split())
    return repr(text + ("..." if len(raw) > limit else ""))


def _error(call: str, status: int, raw: bytes, request_id: str | None) -> ApiError:
    """Parse the three error shapes: Workspace {error_code, error_msg}, gateway APIG.*, SMN {code, message}."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("error_code") or body.get("code")
        message = body.get("error_msg") or body.get("message") or body.get("error_detail")
        request_id = request_id or body.get("request_id")
        if code or message:
            return ApiError(
                call,
                str(message or "no message"),
                status=status,
                code=str(code) if code else None,
                request_id=request_id,
            )
    return ApiError(
        call,
        "unexpected answer: " + _snippet(raw),
        status=status,
        request_id=request_id,
    )
