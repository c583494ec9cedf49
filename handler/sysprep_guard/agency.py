"""Keys for a member account: IAM's CreateTemporaryAccessKeyByAgency, assuming the agency the account gave.

`POST /v3.0/OS-CREDENTIAL/securitytokens` with `auth.identity.methods ["assume_role"]` and
`assume_role {agency_name, domain_id | domain_name, duration_seconds}`, answered 201 with
`credential {access, secret, securitytoken, expires_at}` (Huawei's API definition of the operation, kept in
tests/data/huawei_api_definitions.json; the huaweicloudsdkiam models). The call is signed with the function's own
keys (its agency's), as huaweicloudsdkiam signs it; the caller needs `iam:agencies:assume` on that agency. The keys
are temporary and scoped to the member account: asked for at the start of each target's run, never stored.
"""

from __future__ import annotations

from pydantic import BaseModel

from .client import Credentials, SignedClient
from .models import parse_answer
from .targets import Target

CALL = "iam CreateTemporaryAccessKeyByAgency"
PATH = "/v3.0/OS-CREDENTIAL/securitytokens"
# 900 to 86,400 s, default 900 (the definition). 900 s outlasts any one invocation (FunctionGraph's timeout is at
# most 900 s for an asynchronous one) and keeps the keys' life as short as the API allows.
DURATION_SECONDS = 900


class _Credential(BaseModel):
    access: str
    secret: str
    securitytoken: str
    expires_at: str | None = None


class TemporaryKeys(BaseModel):
    """CreateTemporaryAccessKeyByAgencyResponse."""

    credential: _Credential


def assume(client: SignedClient, endpoint: str, target: Target, keep: float = 0.0) -> Credentials:
    """Temporary keys for `target`'s account, through its agency. Raises ApiError naming the call."""
    assert target.account is not None and target.agency is not None
    domain = "domain_id" if target.domain_is_id else "domain_name"
    body = {
        "auth": {
            "identity": {
                "methods": ["assume_role"],
                "assume_role": {
                    "agency_name": target.agency,
                    domain: target.account,
                    "duration_seconds": DURATION_SECONDS,
                },
            }
        }
    }
    answer = parse_answer(TemporaryKeys, CALL, client.call(CALL, "POST", endpoint, PATH, body=body, keep=keep))
    keys = answer.credential
    return Credentials(ak=keys.access, sk=keys.secret, token=keys.securitytoken)
