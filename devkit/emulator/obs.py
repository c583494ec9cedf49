"""OBS: PutObject, GetObject and ListObjects, path-style (`/{bucket}/{key}`), as esdk-obs-python's ObsClient sends them.

OBS is not behind the API gateway: it checks its own signatures, HMAC-SHA1 over a canonical string of the method,
Content-MD5, Content-Type, Date and the x-obs-* (or x-amz-*) headers, the resource and its sub-resources, in two
schemes it documents: `Authorization: OBS AK:signature` with x-obs-* headers, and the S3-compatible v2
`Authorization: AWS AK:signature` with x-amz-* headers. ObsClient signs with the OBS scheme, except that with
path_style=True (the only style that reaches 127.0.0.1) it switches itself to v2 whatever `signature` says. The
emulator recomputes every signature with the SDK's own code (obs.auth.Authentication, with the scheme's
obs.convertor.Adapter) from what it received, so an accepted request is one whose bytes are the bytes signed; with
a Content-MD5 the body is checked too. A temporary key needs its token (x-obs-security-token or
x-amz-security-token), and Date (or x-obs-date / x-amz-date) within 15 minutes of the emulator's clock. The v4
scheme (AWS4-HMAC-SHA256) is refused, saying so.

Errors are OBS's XML (Error/Code/Message/RequestId/HostId) with the codes of OBS's error table: AccessDenied,
InvalidAccessKeyId, InvalidToken, RequestTimeTooSkewed, SignatureDoesNotMatch, BadDigest, InvalidDigest,
InvalidArgument, NoSuchBucket, NoSuchKey, NotImplemented, ServiceUnavailable (the outage() fault).

Objects live in memory, or with `obs_dir` also in files, `obs_dir/<bucket>/<key>`, loaded when the emulator is made:
so that a local run history outlives the process (scripts/invoke --nights, then scripts/history). Only the bytes are
kept: a loaded object has the default content type, no metadata, and its file's time.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from .faults import Fault
from .http import Answer, Endpoint, Handler, Keys, Request, header_text

if TYPE_CHECKING:
    from .core import Emulator, Route

LIST_MAX = 1000  # ListObjects' max-keys: 1 to 1000; out of that range OBS lists 1000 (its definition)
MAX_DATE_SKEW = 15 * 60  # seconds; OBS refuses a Date / x-obs-date further off (RequestTimeTooSkewed)
MAX_OBJECT_BYTES = 64 * 1024 * 1024  # the emulator's own cap for an object kept in memory (OBS takes 5 GB per PUT)
NAMESPACE = "http://obs.{region}.myhuaweicloud.com/doc/2015-06-30/"
XML = "application/xml"
DEFAULT_CONTENT_TYPE = "application/octet-stream"

# A bucket name: 3 to 63 lower-case letters, digits, hyphens and dots, starting and ending with a letter or digit,
# no "..", no "-." or ".-", not an IP address.
_BUCKET = re.compile(r"^(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)(?!.*-\.)(?!.*\.-)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_PART = r"([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])"
_AUTHORIZATION = re.compile(r"^(OBS|AWS) ([^:\s]+):(\S+)$")
_SCHEMES = {"OBS": "obs", "AWS": "v2"}  # Authorization scheme -> the SDK's signature name (its header prefixes)

# OBS's messages for the codes used (its error code table; the S3-compatible wording OBS answers with).
MESSAGES = {
    "AccessDenied": "Access Denied",
    "BadDigest": "The Content-MD5 you specified did not match what we received.",
    "EntityTooLarge": "Your proposed upload exceeds the maximum allowed object size.",
    "InvalidAccessKeyId": "The access key Id you provided does not exist in our records.",
    "InvalidArgument": "Invalid Argument",
    "InvalidDigest": "The Content-MD5 you specified is not valid.",
    "InvalidToken": "The provided token is malformed or otherwise invalid.",
    "MissingContentLength": "You must provide the Content-Length HTTP header.",
    "NoSuchBucket": "The specified bucket does not exist",
    "NoSuchKey": "The specified key does not exist.",
    "NotImplemented": "A header or parameter you provided implies functionality that is not implemented",
    "RequestTimeTooSkewed": "The difference between the request time and the server's time is too large.",
    "ServiceUnavailable": "Please reduce your request rate.",
    "SignatureDoesNotMatch": (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    ),
}
# Query parameters that turn ListObjects into an operation the emulator does not serve (ListVersions).
_UNSERVED_LIST_PARAMETERS = ("versions", "key-marker", "version-id-marker")


def valid_bucket_name(name: str) -> bool:
    return bool(_BUCKET.match(name))


def error_xml(code: str, message: str, request_id: str, host_id: str) -> bytes:
    """OBS's error body (its documented Error element)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{escape(request_id)}</RequestId><HostId>{escape(host_id)}</HostId></Error>"
    ).encode()


def outage() -> Fault:
    """An OBS outage: 503 ServiceUnavailable with OBS's XML error (inject it on obs_put, obs_get, obs_list, any)."""
    body = error_xml("ServiceUnavailable", MESSAGES["ServiceUnavailable"], "{request_id}", _host_id("outage"))
    return Fault("obs_unavailable", 503, body.decode(), XML)


def _host_id(seed: str) -> str:
    return base64.b64encode(hashlib.sha256(seed.encode()).digest()).decode()


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def _iso_date(timestamp: float) -> str:
    millis = int(timestamp * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{millis:03d}Z"


@dataclass(frozen=True)
class StoredObject:
    data: bytes = field(repr=False)
    content_type: str
    last_modified: float
    metadata: tuple[tuple[str, str], ...] = ()  # x-obs-meta-* (or x-amz-meta-*) headers as received

    @property
    def etag(self) -> str:
        return '"' + hashlib.md5(self.data).hexdigest() + '"'


class Obs:
    """OBS's object operations over in-memory buckets (and files, with `obs_dir`); also the endpoint's authentication
    (Endpoint.authentication)."""

    bad_request_code = "InvalidArgument"
    forbidden_code = "AccessDenied"
    accounts = "central"  # the central account's buckets, to its own keys only

    def __init__(self, emulator: Emulator, buckets: Sequence[str], obs_dir: Path | None = None) -> None:
        invalid = [b for b in buckets if not valid_bucket_name(b)]
        if invalid:
            raise ValueError(f"not OBS bucket names (3 to 63 of a-z 0-9 . -): {invalid}")
        self.emulator = emulator
        self.obs_dir = obs_dir
        self.buckets: dict[str, dict[str, StoredObject]] = {name: self._load(name) for name in buckets}
        self.owner = hashlib.md5(emulator.project_id.encode()).hexdigest()  # the emulated account's domain id
        self.endpoint = Endpoint(self, project_in_path=False, max_request_bytes=MAX_OBJECT_BYTES, claims=self._claims)

    def routes(self) -> list[Route]:
        from .core import Route

        bucket = re.compile(f"^/{_BUCKET_PART}/?$")
        obj = re.compile(f"^/{_BUCKET_PART}/(.+)$")
        return [
            Route("PUT", obj, "obs_put", "PutObject", self._put, self, self.endpoint),
            Route("GET", obj, "obs_get", "GetObject", self._get, self, self.endpoint),
            Route("GET", bucket, "obs_list", "ListObjects", self._list, self, self.endpoint),
        ]

    def error(self, status: int, code: str, message: str, request_id: str, close: bool = False) -> Answer:
        """OBS's error: XML {Code, Message, RequestId, HostId}, the request id also in x-obs-request-id."""
        if code == self.bad_request_code:  # the core's refusals of a body it could not read
            code = {411: "MissingContentLength", 413: "EntityTooLarge"}.get(status, code)
        host_id = _host_id(request_id)
        body = error_xml(code, message or MESSAGES.get(code, code), request_id, host_id)
        return Answer(status, body, XML, close, self._headers(request_id, host_id))

    # Scripting ------------------------------------------------------------------------------------

    def store(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> StoredObject:
        stored = StoredObject(data, content_type, self.emulator.clock(), metadata)
        with self.emulator._lock:
            if bucket not in self.buckets:
                raise KeyError(f"no bucket {bucket!r}: the emulator has {sorted(self.buckets)}")
            if self.obs_dir is not None:
                if not self.storable(key):
                    raise ValueError(f"the key {key!r} cannot be a file under {self.obs_dir}")
                file = self.obs_dir / bucket / key
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_bytes(data)
            self.buckets[bucket][key] = stored
        return stored

    def storable(self, key: str) -> bool:
        """Whether a file can hold this key: each part of it a plain name, so that no key leaves its bucket."""
        return self.obs_dir is None or all(part not in ("", ".", "..") for part in key.split("/"))

    def _load(self, bucket: str) -> dict[str, StoredObject]:
        if self.obs_dir is None:
            return {}
        folder = self.obs_dir / bucket
        folder.mkdir(parents=True, exist_ok=True)
        objects: dict[str, StoredObject] = {}
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                stored = StoredObject(path.read_bytes(), DEFAULT_CONTENT_TYPE, path.stat().st_mtime)
                objects[path.relative_to(folder).as_posix()] = stored
        return objects

    # Which requests are OBS's, and their signatures ---------------------------------------------------

    def _claims(self, request: Handler, params: tuple[str, ...]) -> bool:
        """A request is OBS's when its bucket exists or when it comes signed or dated as OBS requests are: so that a
        stray path of another service (an unknown Workspace path) still meets the gateway's 404."""
        if params[0] in self.buckets:
            return True
        authorization = (request.headers.get("Authorization") or "").lstrip()
        return authorization.startswith(("OBS ", "AWS ", "AWS4-")) or any(
            name.lower().startswith(("x-obs-", "x-amz-")) for name in request.headers
        )

    def refusal(self, request: Handler, call: Request, raw_query: str, keys: Keys, now: float) -> Answer | None:
        """None if the request is signed as OBS checks it, else OBS's refusal."""
        problem = self._signature_problem(request, call, raw_query, keys, now)
        if problem is None:
            return None
        status, code, detail = problem
        message = f"{MESSAGES[code]} ({detail})" if detail else MESSAGES[code]
        return self.error(status, code, message, call.request_id)

    def _signature_problem(
        self, request: Handler, call: Request, raw_query: str, keys: Keys, now: float
    ) -> tuple[int, str, str] | None:
        from obs.auth import Authentication
        from obs.convertor import Adapter

        authorization = (request.headers.get("Authorization") or "").strip()
        if not authorization:
            return 403, "AccessDenied", "anonymous access: the bucket is private and the request is not signed"
        parsed = _AUTHORIZATION.match(authorization)
        if parsed is None:
            if authorization.startswith("AWS4-"):
                detail = "the emulator checks the OBS and v2 signature schemes, not v4: ObsClient(signature='obs')"
            else:
                detail = "Authorization is neither 'OBS AK:signature' nor 'AWS AK:signature'"
            return 403, "AccessDenied", detail
        scheme, access_key, presented = parsed.groups()
        adapter = Adapter(_SCHEMES[scheme])  # x-obs-* headers for OBS, x-amz-* for v2
        if access_key not in keys:
            return 403, "InvalidAccessKeyId", ""
        secret_key, token = keys[access_key]

        token_header = adapter.security_token_header()
        sent_token = request.headers.get(token_header)
        if token is not None:
            if sent_token is None:  # a temporary access key is known only with its token
                return 403, "InvalidAccessKeyId", f"no {token_header} for a temporary access key"
            if not hmac.compare_digest(sent_token.encode(), token.encode()):
                return 400, "InvalidToken", f"wrong {token_header}"
        elif sent_token is not None:
            return 400, "InvalidToken", f"{token_header} sent with a permanent access key"

        date_header = adapter.date_header()
        date = request.headers.get(date_header) or request.headers.get("Date")
        signed_at = _parse_http_date(date)
        if signed_at is None:
            return 403, "AccessDenied", f"a valid Date or {date_header} header is required, got {date!r}"
        if abs(now - signed_at) > MAX_DATE_SKEW:
            return 403, "RequestTimeTooSkewed", f"{date} is more than 15 minutes away from the server's time"

        headers = {name: header_text(value) for name, value in request.headers.items()}
        bucket, key = call.params[0], call.params[1] if len(call.params) > 1 else ""
        # The SDK's own canonical string and HMAC-SHA1, over what was received: path-style, as the URL says.
        signer = Authentication(access_key, secret_key, True, adapter, "", False)
        try:
            expected = signer.getSignature(call.method, bucket, key or None, _sub_resources(raw_query), headers)
        except Exception as exc:  # whatever the signer cannot canonicalise, OBS refuses too
            return 403, "SignatureDoesNotMatch", f"the request cannot be verified ({type(exc).__name__})"
        if not hmac.compare_digest(expected["Signature"].encode(), presented.encode()):
            return 403, "SignatureDoesNotMatch", ""

        digest = request.headers.get("Content-MD5")
        if digest is not None:  # signed, so the body is held to it
            try:
                wanted = base64.b64decode(digest, validate=True)
            except (binascii.Error, ValueError):
                wanted = b""
            if len(wanted) != 16:
                return 400, "InvalidDigest", ""
            if not hmac.compare_digest(wanted, hashlib.md5(call.body).digest()):
                return 400, "BadDigest", ""
        return None

    # The calls ------------------------------------------------------------------------------------

    def _headers(self, request_id: str, host_id: str | None = None) -> dict[str, str]:
        return {"x-obs-request-id": request_id, "x-obs-id-2": host_id or _host_id(request_id)}

    def _bucket(self, request: Request) -> dict[str, StoredObject] | Answer:
        bucket = request.params[0]
        objects = self.buckets.get(bucket)
        if objects is None:
            return self.error(404, "NoSuchBucket", MESSAGES["NoSuchBucket"], request.request_id)
        return objects

    def _put(self, request: Request) -> Answer:
        objects = self._bucket(request)
        if isinstance(objects, Answer):
            return objects
        bucket, key = request.params
        if not self.storable(key):
            message = f"{MESSAGES['InvalidArgument']}: the emulator keeps objects as files and cannot hold {key!r}"
            return self.error(400, "InvalidArgument", message, request.request_id)
        headers = {name.lower(): value for name, value in request.headers.items()}
        metadata = tuple(sorted((k, v) for k, v in headers.items() if k.startswith(("x-obs-meta-", "x-amz-meta-"))))
        content_type = headers.get("content-type") or DEFAULT_CONTENT_TYPE
        stored = self.store(bucket, key, request.body, content_type=content_type, metadata=metadata)
        return Answer(200, b"", XML, headers={**self._headers(request.request_id), "ETag": stored.etag})

    def _get(self, request: Request) -> Answer:
        objects = self._bucket(request)
        if isinstance(objects, Answer):
            return objects
        key = request.params[1]
        with self.emulator._lock:
            stored = objects.get(key)
        if stored is None:
            return self.error(404, "NoSuchKey", MESSAGES["NoSuchKey"], request.request_id)
        headers = {
            **self._headers(request.request_id),
            "ETag": stored.etag,
            "Last-Modified": _http_date(stored.last_modified),
            "x-obs-storage-class": "STANDARD",
            **dict(stored.metadata),
        }
        return Answer(200, stored.data, stored.content_type, headers=headers)

    def _list(self, request: Request) -> Answer:
        objects = self._bucket(request)
        if isinstance(objects, Answer):
            return objects
        params: dict[str, str] = {}
        for name, value in request.query:
            params.setdefault(name, value)  # the first of a repeated parameter counts
        unserved = [p for p in _UNSERVED_LIST_PARAMETERS if p in params]
        if unserved:
            message = f"{MESSAGES['NotImplemented']}: {', '.join(unserved)} (ListVersions is not emulated)"
            return self.error(501, "NotImplemented", message, request.request_id)
        encoding = params.get("encoding-type")
        if encoding not in (None, "url"):
            message = f"Invalid Encoding Method specified: {encoding}"
            return self.error(400, "InvalidArgument", message, request.request_id)
        try:
            max_keys = int(params.get("max-keys", str(LIST_MAX)))
        except ValueError:
            message = f"max-keys must be an integer, got {params['max-keys']!r}"
            return self.error(400, "InvalidArgument", message, request.request_id)
        if not 1 <= max_keys <= LIST_MAX:
            max_keys = LIST_MAX  # OBS's definition: out of [1, 1000], the default 1000
        prefix, marker, delimiter = params.get("prefix", ""), params.get("marker", ""), params.get("delimiter", "")

        with self.emulator._lock:
            keys = sorted(k for k in objects if k.startswith(prefix) and k > marker)
            listed = {k: objects[k] for k in keys}
        contents: list[str] = []
        prefixes: list[str] = []
        last = ""
        truncated = False
        for key in keys:
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            common = key[: cut + len(delimiter)] if cut >= 0 else None
            if common is not None and ((prefixes and prefixes[-1] == common) or common <= marker):
                continue  # within a group already listed, on this page or (the marker) on an earlier one
            if len(contents) + len(prefixes) == max_keys:
                truncated = True
                break
            if common is not None:
                prefixes.append(common)
                last = common
            else:
                contents.append(key)
                last = key

        def text(value: str) -> str:
            return escape(quote(value, safe="/") if encoding == "url" else value)

        parts = [
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n',
            f'<ListBucketResult xmlns="{NAMESPACE.format(region=self.emulator.region)}">',
            f"<Name>{escape(request.params[0])}</Name>",
            f"<Prefix>{text(prefix)}</Prefix>",
            f"<Marker>{text(marker)}</Marker>",
        ]
        if truncated:
            parts.append(f"<NextMarker>{text(last)}</NextMarker>")
        parts.append(f"<MaxKeys>{max_keys}</MaxKeys>")
        if delimiter:
            parts.append(f"<Delimiter>{text(delimiter)}</Delimiter>")
        if encoding:
            parts.append(f"<EncodingType>{escape(encoding)}</EncodingType>")
        parts.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        for key in contents:
            stored = listed[key]
            parts.append(
                f"<Contents><Key>{text(key)}</Key><LastModified>{_iso_date(stored.last_modified)}</LastModified>"
                f"<ETag>{escape(stored.etag)}</ETag><Size>{len(stored.data)}</Size>"
                f"<Owner><ID>{self.owner}</ID></Owner><StorageClass>STANDARD</StorageClass></Contents>"
            )
        parts.extend(f"<CommonPrefixes><Prefix>{text(p)}</Prefix></CommonPrefixes>" for p in prefixes)
        parts.append("</ListBucketResult>")
        return Answer(200, "".join(parts).encode(), XML, headers=self._headers(request.request_id))


def _parse_http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _sub_resources(raw_query: str) -> dict[str, str | None]:
    """The query as the SDK's signer takes it (its path_args): a parameter without `=` has the value None. The signer
    itself keeps only OBS's sub-resources (acl, versionId, ...) in the canonical string."""
    args: dict[str, str | None] = {}
    for item in raw_query.split("&"):
        if item:
            name, sep, value = item.partition("=")
            args[unquote(name)] = unquote(value) if sep else None
    return args
