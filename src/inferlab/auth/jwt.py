"""Optional JWT bearer tokens from one configured issuer (PyJWT), keys from a JWKS file or URL.

Claims map to a ``Principal``: ``sub`` → user ``jwt:<sub>``, ``tenant_claim`` → tenant (default
tenant when absent), ``role_claim`` through ``role_map`` → role (``default_role`` when absent or
unknown), ``groups_claim`` (space-separated) → route groups. Only asymmetric algorithms are
accepted. Verified tokens are cached like API keys, never past their ``exp``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import aiohttp
import jwt as pyjwt

from inferlab.auth.model import DEFAULT_TENANT, ROLE_RANK, ROUTE_GROUPS, Principal, Role, Scopes
from inferlab.config import JwtSettings
from inferlab.errors import AuthenticationFailed

log = logging.getLogger("inferlab.auth")

_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
REFRESH_MIN_INTERVAL_S = 60.0
MAX_TOKEN_LENGTH = 8192


class JwtVerifier:
    def __init__(self, settings: JwtSettings, *, ttl_s: float = 5.0, max_entries: int = 10000) -> None:
        assert settings.issuer, "JwtVerifier needs jwt.issuer"
        self._settings = settings
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._keys: dict[str, pyjwt.PyJWK] = {}
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._last_refresh = 0.0

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return len(token) <= MAX_TOKEN_LENGTH and bool(_JWT.match(token))

    async def start(self) -> None:
        """Load the JWKS (file now; URL now and again when an unknown ``kid`` shows up)."""
        await self._refresh()

    def load_jwks(self, document: dict[str, Any]) -> None:
        jwks = pyjwt.PyJWKSet.from_dict(document)
        self._keys = {key.key_id or "": key for key in jwks.keys}

    async def _refresh(self) -> None:
        self._last_refresh = time.monotonic()
        if self._settings.jwks_file is not None:
            self.load_jwks(json.loads(self._settings.jwks_file.read_text("utf-8")))
            return
        assert self._settings.jwks_url is not None
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(self._settings.jwks_url) as response,
        ):
            response.raise_for_status()
            self.load_jwks(await response.json(content_type=None))

    async def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            kid = pyjwt.get_unverified_header(token).get("kid") or ""
        except pyjwt.PyJWTError:
            raise AuthenticationFailed("Invalid bearer token", code="invalid_token") from None
        key = await self._key(str(kid))
        s = self._settings
        try:
            claims = pyjwt.decode(
                token, key, algorithms=s.algorithms, issuer=s.issuer, audience=s.audience, leeway=s.leeway_s,
                options={"require": ["exp", "iss", "sub"], "verify_aud": s.audience is not None},
            )
        except pyjwt.ExpiredSignatureError:
            raise AuthenticationFailed("The bearer token has expired", code="expired_token") from None
        except pyjwt.PyJWTError as exc:
            log.info("jwt rejected", extra={"reason": type(exc).__name__})
            raise AuthenticationFailed("Invalid bearer token", code="invalid_token") from None
        principal = self.principal(claims)
        fresh_until = time.monotonic() + min(self._ttl_s, max(0.0, float(claims["exp"]) - time.time()))
        if len(self._cache) >= self._max_entries:
            self._cache.pop(next(iter(self._cache)))
        self._cache[token] = (fresh_until, principal)
        return principal

    async def _key(self, kid: str) -> Any:
        found = self._keys.get(kid)
        if found is None and time.monotonic() - self._last_refresh >= REFRESH_MIN_INTERVAL_S:
            try:
                await self._refresh()
            except (OSError, aiohttp.ClientError, ValueError, pyjwt.PyJWTError):
                log.warning("could not refresh the JWKS", exc_info=True)
            found = self._keys.get(kid)
        if found is None and kid == "" and len(self._keys) == 1:
            found = next(iter(self._keys.values()))
        if found is None:
            raise AuthenticationFailed("Invalid bearer token", code="invalid_token")
        return found.key

    def principal(self, claims: dict[str, Any]) -> Principal:
        s = self._settings
        tenant = claims.get(s.tenant_claim, DEFAULT_TENANT)
        if not isinstance(tenant, str) or not _TENANT.match(tenant):
            raise AuthenticationFailed("The bearer token names no valid tenant", code="invalid_token")
        raw_role = claims.get(s.role_claim)
        role: Role = s.default_role
        if isinstance(raw_role, str):
            mapped = s.role_map.get(raw_role, raw_role)
            if mapped in ROLE_RANK:
                role = mapped  # type: ignore[assignment]
        raw_groups = claims.get(s.groups_claim)
        groups = frozenset(raw_groups.split()) & ROUTE_GROUPS if isinstance(raw_groups, str) else frozenset()
        return Principal(
            tenant_id=tenant, user_id=f"jwt:{claims['sub']}", role=role,
            scopes=Scopes(groups or frozenset(s.default_groups), None), source="jwt",
        )  # no expires_at: the token is a session, it does not cap the expiry of keys its user creates
