"""IAM: CreateTemporaryAccessKeyByAgency, `POST /v3.0/OS-CREDENTIAL/securitytokens` with `assume_role`.

Sources: the API Explorer definition (mirror mingyang91/huawei-cloud-api-definitions @ e05e9a02,
schemas/IAM/src/CreateTemporaryAccessKeyByAgency.json) and huaweicloudsdkiam 3.1.219's models
(CreateTemporaryAccessKeyByAgencyRequestBody -> AgencyAuth -> AgencyAuthIdentity{methods, assume_role, policy} ->
IdentityAssumerole{agency_name, domain_id, domain_name, duration_seconds, session_user{name}}; the answer, 201,
CreateTemporaryAccessKeyByAgencyResponse{credential: Credential{access, secret, securitytoken, expires_at}}).
The API page (https://support.huaweicloud.com/api-iam/iam_04_0101.html) takes an AK/SK-signed Authorization
instead of X-Auth-Token, so the route sits behind the gateway's SDK-HMAC-SHA256 check like the others, on the same
port, with no project in its path; any account's keys may call it.

The call succeeds only when the caller's account is the one the agency trusts, the agency exists in the account the
body names (domain_id or domain_name), and the body is valid. The definition documents 201, 400, 401, 403 and 500
only: so an unknown account or agency is refused 403 like an untrusted caller (no 404 is documented for this call).
Error bodies are IAM's Keystone shape {"error": {"code", "message", "title"}}: the definition of this call has no
error examples, but CreatePermanentAccessKey (the same /v3.0/OS-CREDENTIAL family) shows
{"error": {"code": 400, "message": "akSkNumExceed", "title": "Bad Request"}}, and KeystoneCreateAgencyToken (the
same assume_role) shows 400 "The request body is invalid", 401 "Unauthorized" and 403 "You have no right to do this
action" in it. The emulator adds why to each message. It refuses fields the models do not have (400): stricter than
IAM may be, so that a misspelt field is caught here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .estate import DURATION_DEFAULT, DURATION_MAX, DURATION_MIN
from .faults import Fault
from .http import Answer, Request, json_answer

if TYPE_CHECKING:
    from .core import Emulator, Route

PATH = "/v3.0/OS-CREDENTIAL/securitytokens"
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}
NO_RIGHT = "You have no right to do this action"  # KeystoneCreateAgencyToken's 403 example

# Fields of the SDK models (attribute_map), at each level of the body.
_IDENTITY_FIELDS = {"methods", "assume_role", "policy"}
_ASSUME_ROLE_FIELDS = {"agency_name", "domain_id", "domain_name", "duration_seconds", "session_user"}
# session_user.name: "5 to 64 letters, digits, - and _, starting with a letter" (the definition).
_SESSION_USER = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{4,63}$")
POLICY_MAX_CHARS = 2048  # "policy参数的字符个数不大于2048" (the API page)


def keystone_error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "title": TITLES.get(status, "Error")}}


def refused(message: str = NO_RIGHT) -> Fault:
    """IAM refusing the call (403), for emu.inject("assume", ...)."""
    return Fault.answer(403, keystone_error(403, message), name="iam_refused")


def outage() -> Fault:
    """IAM failing (500), for emu.inject("assume", ...)."""
    message = "An unexpected error prevented the server from fulfilling your request."
    return Fault.answer(500, keystone_error(500, message), name="iam_outage")


@dataclass(frozen=True)
class AssumeRole:
    """A valid body's assume_role."""

    agency_name: str
    domain_id: str | None
    domain_name: str | None
    duration: int
    session_user: str | None


class Problem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Iam:
    bad_request_code = "400"  # IAM's Keystone errors carry the HTTP status as their code
    forbidden_code = "403"
    accounts = "any"  # any account's keys may call it: the agency decides

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def routes(self) -> list[Route]:
        from .core import Route
        from .http import GATEWAY, Endpoint

        endpoint = Endpoint(GATEWAY.authentication, project_in_path=False)
        pattern = re.compile(f"^{re.escape(PATH)}/?$")
        return [Route("POST", pattern, "assume", "CreateTemporaryAccessKeyByAgency", self._assume, self, endpoint)]

    def error(self, status: int, code: str, message: str, request_id: str, close: bool = False) -> Answer:
        """IAM's Keystone error body: {"error": {"code", "message", "title"}}."""
        return json_answer(status, keystone_error(status, message), close=close)

    def _assume(self, request: Request) -> Answer:
        estate = self.emulator.estate
        try:
            wanted = assume_role(request.json())
            account = estate.find(domain_name=wanted.domain_name) if wanted.domain_name else None
            if wanted.domain_id is not None:
                by_id = estate.find(domain_id=wanted.domain_id)
                if wanted.domain_name is not None and account != by_id:
                    raise Problem(403, f"{NO_RIGHT}: domain_id and domain_name do not name the same account")
                account = by_id
            if account is None:
                named = wanted.domain_name or wanted.domain_id
                raise Problem(403, f"{NO_RIGHT}: no account {named!r} (the agency's domain)")
            agency = estate.agency(account.domain_id, wanted.agency_name)
            if agency is None:
                raise Problem(403, f"{NO_RIGHT}: account {account.name} has no agency {wanted.agency_name!r}")
            if agency.trusted != request.account:
                message = f"{NO_RIGHT}: agency {agency.name} of {account.name} does not trust account {request.account}"
                raise Problem(403, message)
        except Problem as problem:
            return self.error(problem.status, str(problem.status), problem.message, request.request_id)
        issued = estate.issue(agency, request.account, wanted.duration, self.emulator.clock(), wanted.session_user)
        credential = {
            "access": issued.access,
            "secret": issued.secret,
            "securitytoken": issued.token,
            "expires_at": issued.expires_at_text,
        }
        return json_answer(201, {"credential": credential})


def assume_role(data: Any) -> AssumeRole:
    """A CreateTemporaryAccessKeyByAgency body's assume_role, or Problem (400) saying what is wrong with it."""
    auth = data.get("auth") if isinstance(data, dict) else None
    identity = auth.get("identity") if isinstance(auth, dict) else None
    if not isinstance(identity, dict) or set(data) != {"auth"} or set(auth) != {"identity"}:
        raise _invalid('it must be {"auth": {"identity": {...}}}')
    unknown = sorted(set(identity) - _IDENTITY_FIELDS)
    if unknown:
        raise _invalid(f"auth.identity has fields AgencyAuthIdentity does not: {unknown}")
    if identity.get("methods") != ["assume_role"]:
        raise _invalid(f'methods must be ["assume_role"], got {identity.get("methods")!r}')
    policy = identity.get("policy")
    if policy is not None and not _valid_policy(policy):
        message = f"policy must be {{Version, Statement: [...]}} of at most {POLICY_MAX_CHARS} characters"
        raise _invalid(message)
    role = identity.get("assume_role")
    if not isinstance(role, dict):
        raise _invalid("auth.identity.assume_role is required")
    unknown = sorted(set(role) - _ASSUME_ROLE_FIELDS)
    if unknown:
        raise _invalid(f"assume_role has fields IdentityAssumerole does not: {unknown}")
    name = role.get("agency_name")
    if not isinstance(name, str) or not name:
        raise _invalid("assume_role.agency_name is required")
    domain_id, domain_name = role.get("domain_id"), role.get("domain_name")
    if domain_id is None and domain_name is None:
        raise _invalid("give assume_role.domain_id or domain_name (at least one)")
    if any(v is not None and (not isinstance(v, str) or not v) for v in (domain_id, domain_name)):
        raise _invalid("domain_id and domain_name are non-empty strings")
    duration = role.get("duration_seconds", DURATION_DEFAULT)
    if isinstance(duration, bool) or not isinstance(duration, int) or not DURATION_MIN <= duration <= DURATION_MAX:
        message = f"duration_seconds must be an integer from {DURATION_MIN} to {DURATION_MAX}, got {duration!r}"
        raise _invalid(message)
    session_user = role.get("session_user")
    user_name = None
    if session_user is not None:
        user_name = session_user.get("name") if isinstance(session_user, dict) else None
        if (
            not isinstance(session_user, dict)
            or set(session_user) - {"name"}
            or (user_name is not None and not (isinstance(user_name, str) and _SESSION_USER.match(user_name)))
        ):
            raise _invalid("session_user must be {name: 5 to 64 letters, digits, - and _, starting with a letter}")
    return AssumeRole(name, domain_id, domain_name, duration, user_name)


def _invalid(detail: str) -> Problem:
    return Problem(400, f"The request body is invalid: {detail}")


def _valid_policy(policy: Any) -> bool:
    """ServicePolicy: {Version, Statement: [{Action: [...], Effect: Allow|Deny, Resource?, Condition?}]}."""
    if not isinstance(policy, dict) or not isinstance(policy.get("Version"), str):
        return False
    statements = policy.get("Statement")
    if not isinstance(statements, list) or len(json.dumps(policy, separators=(",", ":"))) > POLICY_MAX_CHARS:
        return False
    return all(
        isinstance(s, dict)
        and isinstance(s.get("Action"), list)
        and str(s.get("Effect", "")).lower() in ("allow", "deny")  # the definition's own example writes "allow"
        for s in statements
    )
