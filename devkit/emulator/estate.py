"""The estate: accounts, their Workspace projects, the agencies between them, and the temporary keys IAM issued.

The emulator's own account (the central one) owns the default project and every key in `Emulator.keys`; member
accounts own the projects added for them and only the temporary keys IAM issued through one of their agencies (IAM
CreateTemporaryAccessKeyByAgency). A key works only on its own account's projects: "B can use the token only to
manage A's delegated resources, not the resources in its own account" (the definition of KeystoneCreateAgencyToken,
the token form of the same assume_role, mirror mingyang91/huawei-cloud-api-definitions
schemas/IAM/src/KeystoneCreateAgencyToken.json). Issued keys expire at their `expires_at`, on the emulator's clock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .fleet import Fleet
from .http import Answer, Request, gateway_error

if TYPE_CHECKING:
    from .core import Route

# Obviously fake domain ids in IAM's form (32 hex digits); every account of the emulator starts with 0ddba11e.
DOMAIN_PREFIX = "0ddba11e"
DEFAULT_DOMAIN_ID = DOMAIN_PREFIX + "0" * 24
DEFAULT_DOMAIN_NAME = "emulator-central"

# CreateTemporaryAccessKeyByAgency's duration_seconds: 900 to 86400, default 900 (its definition).
DURATION_MIN = 900
DURATION_MAX = 86_400
DURATION_DEFAULT = 900


@dataclass(frozen=True)
class Account:
    name: str
    domain_id: str


@dataclass(frozen=True)
class Project:
    """A Workspace project: its region, its desktops, and the account (domain id) that owns it."""

    project_id: str
    region: str
    fleet: Fleet
    domain_id: str


@dataclass(frozen=True)
class Agency:
    """An agency of `domain_id` (the delegating, member account) that `trusted` (a domain id) may assume."""

    name: str
    domain_id: str
    trusted: str


@dataclass(frozen=True)
class Issued:
    """Temporary keys IAM issued through an agency: they work on `account`'s projects until `expires_at`."""

    access: str
    secret: str = field(repr=False)
    token: str = field(repr=False)
    account: str = ""  # the domain id of the agency's (member) account
    agency: str = ""
    duration: int = DURATION_DEFAULT  # seconds
    caller: str = ""  # the domain id of the account that assumed the agency
    issued_at: float = 0.0  # the emulator's clock
    expires_at: float = 0.0
    session_user: str | None = None

    @property
    def expires_at_text(self) -> str:
        """As CreateTemporaryAccessKeyByAgency answers it: ISO 8601, UTC, six fractional digits (its example)."""
        return datetime.fromtimestamp(self.expires_at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Estate:
    """Who owns what. Thread-safe: requests issue keys while a test adds accounts."""

    def __init__(self, domain_id: str = DEFAULT_DOMAIN_ID, domain_name: str = DEFAULT_DOMAIN_NAME) -> None:
        self.central = Account(domain_name, domain_id)
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {domain_id: self.central}  # by domain id
        self._projects: dict[str, Project] = {}  # the added ones; the default project is the emulator's own
        self._agencies: dict[tuple[str, str], Agency] = {}  # (domain id, agency name)
        self.issued: list[Issued] = []  # in issue order
        self._by_access: dict[str, Issued] = {}

    # Accounts and projects ------------------------------------------------------------------------

    def add_account(self, name: str, domain_id: str | None = None) -> str:
        if not name:
            raise ValueError("an account needs a name")
        domain_id = domain_id or DOMAIN_PREFIX + hashlib.md5(f"emulator-account:{name}".encode()).hexdigest()[:24]
        with self._lock:
            if domain_id in self._accounts or any(a.name == name for a in self._accounts.values()):
                raise ValueError(f"an account named {name!r} or with domain id {domain_id} already exists")
            self._accounts[domain_id] = Account(name, domain_id)
        return domain_id

    def account(self, name_or_id: str | None) -> Account:
        """The account with this domain id or name (None: the central account); KeyError if there is none."""
        if name_or_id is None:
            return self.central
        found = self.find(domain_id=name_or_id) or self.find(domain_name=name_or_id)
        if found is None:
            raise KeyError(f"no account named or with domain id {name_or_id!r}")
        return found

    def find(self, *, domain_id: str | None = None, domain_name: str | None = None) -> Account | None:
        with self._lock:
            if domain_id is not None:
                return self._accounts.get(domain_id)
            return next((a for a in self._accounts.values() if a.name == domain_name), None)

    def add_project(self, project: Project) -> None:
        with self._lock:
            if project.project_id in self._projects:
                raise ValueError(f"project {project.project_id} already exists")
            self._projects[project.project_id] = project

    def project(self, project_id: str) -> Project | None:
        with self._lock:
            return self._projects.get(project_id)

    @property
    def projects(self) -> list[Project]:
        with self._lock:
            return list(self._projects.values())

    # Agencies and keys ----------------------------------------------------------------------------

    def add_agency(self, account: str, name: str, trusts: str | None = None) -> Agency:
        if not name:
            raise ValueError("an agency needs a name")
        agency = Agency(name, self.account(account).domain_id, self.account(trusts).domain_id)
        with self._lock:
            self._agencies[(agency.domain_id, name)] = agency
        return agency

    def agency(self, domain_id: str, name: str) -> Agency | None:
        with self._lock:
            return self._agencies.get((domain_id, name))

    def issue(self, agency: Agency, caller: str, duration: int, now: float, session_user: str | None = None) -> Issued:
        """New temporary keys for `agency`'s account, distinct on every issue."""
        with self._lock:
            n = len(self.issued) + 1
            issued = Issued(
                access=f"EMUTMP{n:014d}",  # 20 characters, like the definition's example access key
                secret=f"emulator-temporary-secret-{n:014d}",  # 40, like its example secret
                token=f"emulator-temporary-token-{n:06d}-{agency.domain_id}",
                account=agency.domain_id,
                agency=agency.name,
                duration=duration,
                caller=caller,
                issued_at=now,
                expires_at=now + duration,
                session_user=session_user,
            )
            self.issued.append(issued)
            self._by_access[issued.access] = issued
        return issued

    def expire(self, now: float, account: str | None = None) -> int:
        """Make the keys issued so far (for one account's domain id, or all) expire now; how many changed."""
        with self._lock:
            changed = 0
            for i, issued in enumerate(self.issued):
                if (account is None or issued.account == account) and issued.expires_at > now:
                    self.issued[i] = expired = dataclasses.replace(issued, expires_at=now)
                    self._by_access[issued.access] = expired
                    changed += 1
            return changed

    def issued_key(self, access_key: str) -> Issued | None:
        with self._lock:
            return self._by_access.get(access_key)

    def keys(self, central: Mapping[str, tuple[str, str | None]], now: float) -> dict[str, tuple[str, str | None]]:
        """Every key that authenticates now: the central account's, and the issued keys not yet expired."""
        with self._lock:
            live = {i.access: (i.secret, i.token) for i in self._by_access.values() if i.expires_at > now}
        return {**live, **central}

    # Who may act where -----------------------------------------------------------------------------

    def expired_refusal(
        self, access_key: str | None, central: Mapping[str, tuple[str, str | None]], request_id: str, now: float
    ) -> Answer | None:
        """The gateway's 401 for temporary keys IAM issued that have expired (None for any other key)."""
        issued = self.issued_key(access_key) if access_key and access_key not in central else None
        if issued is None or issued.expires_at > now:
            return None
        message = f"the temporary access key expired at {issued.expires_at_text}"
        return gateway_error(401, "APIG.0301", f"Incorrect IAM authentication information: {message}", request_id)

    def not_permitted(
        self, route: Route, call: Request, project: Project | None, header_project: str | None
    ) -> str | None:
        """Why the caller's account (call.account) may not act there (None if it may): a project of another account,
        or of none (`project` None for a project id the emulator does not know); a central service called with a
        member account's keys."""
        central = self.central.domain_id
        if call.project_id is None:
            if route.service.accounts == "central" and call.account != central:
                return f"the keys of account {call.account or '(unknown)'} cannot act for account {central}"
            return None
        if project is None:
            return f"project {call.project_id!r} is not a project of these credentials' account ({call.account})"
        if header_project is not None and header_project != call.project_id:
            return f"X-Project-Id {header_project!r} is not the project in the path ({call.project_id})"
        if project.domain_id != call.account:
            return f"project {call.project_id} belongs to account {project.domain_id}, not to {call.account}"
        if route.service.accounts == "central" and project.domain_id != central:
            return f"{route.operation} is served in the central account's projects only"
        return None

    def owner_of_key(self, access_key: str | None, central: Mapping[str, tuple[str, str | None]]) -> str:
        """The domain id of the account a key belongs to ("" for a key the emulator never knew)."""
        if access_key is None:
            return ""
        if access_key in central:
            return self.central.domain_id
        issued = self.issued_key(access_key)
        return issued.account if issued is not None else ""
