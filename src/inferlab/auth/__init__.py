"""Authentication and authorisation: API keys (and optional JWTs) → ``Principal`` → route policy.

Interfaces: ``KeyStore``, ``UserManager`` (implemented over SQL in ``inferlab.store``).
"""

from inferlab.auth.admin import CreatedKey, IdentityAdmin
from inferlab.auth.model import ALL_SCOPES, LOCAL_OPERATOR, ApiKey, Principal, Role, Scopes, Tenant, User
from inferlab.auth.policy import RoutePolicy, RouteRule
from inferlab.auth.protocol import Conflict, KeyStore, UserManager
from inferlab.auth.service import AuthService, LastUsedRecorder

__all__ = [
    "ALL_SCOPES",
    "LOCAL_OPERATOR",
    "ApiKey",
    "AuthService",
    "Conflict",
    "CreatedKey",
    "IdentityAdmin",
    "KeyStore",
    "LastUsedRecorder",
    "Principal",
    "Role",
    "RoutePolicy",
    "RouteRule",
    "Scopes",
    "Tenant",
    "User",
    "UserManager",
]
