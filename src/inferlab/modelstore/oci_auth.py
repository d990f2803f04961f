"""Registry authentication, as the distribution spec's token flow has it.

A request without credentials that the registry refuses comes back ``401`` with a challenge,
``WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry",scope="repository:x:pull"``.
The client then asks the realm (the token service) for a token for that service and scope —
anonymously, or with HTTP Basic credentials when it has some — and retries with
``Authorization: Bearer <token>``. A registry that challenges ``Basic`` takes the credentials
directly. Tokens are kept per scope for the session; a ``401`` on a kept token asks for a new one
once. Credentials are never sent anywhere but the registry's realm and the registry itself (blob
redirects go without them: :mod:`inferlab.modelstore.oci`).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

import aiohttp

from inferlab.modelstore.store import StoreError

_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class AuthError(StoreError):
    """The registry or its token service refused the credentials (or gave none to anonymous users)."""


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # "bearer" or "basic", lower-cased
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def parse_challenge(header: str) -> Challenge:
    """The first challenge of a ``WWW-Authenticate`` header (registries send one)."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        raise AuthError("the registry answered 401 without a WWW-Authenticate challenge")
    params = {match[1].lower(): (match[2] if match[2] is not None else match[3]).replace('\\"', '"')
              for match in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


class RegistryAuth:
    """``Authorization`` header values for one registry, per scope, fetched on a challenge."""

    def __init__(self, session: aiohttp.ClientSession, credentials: Credentials | None = None) -> None:
        self._session = session
        self._credentials = credentials
        self._headers: dict[str, str] = {}  # scope -> Authorization value

    def header(self, scope: str) -> dict[str, str]:
        value = self._headers.get(scope)
        return {"Authorization": value} if value else {}

    async def answer(self, challenge_header: str | None, scope: str) -> None:
        """Obtain credentials for ``scope`` after a 401 carrying ``challenge_header``."""
        challenge = parse_challenge(challenge_header or "")
        if challenge.scheme == "basic":
            if self._credentials is None:
                raise AuthError("the registry wants a username and password (--username, INFERLAB_PULL_PASSWORD)")
            if self._headers.get(scope) == self._credentials.basic():
                raise AuthError("the registry refused the username and password")
            self._headers[scope] = self._credentials.basic()
            return
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise AuthError(f"the registry asks for {challenge.scheme!r} authentication, which is not supported")
        self._headers[scope] = "Bearer " + await self._token(challenge.params, scope)

    async def _token(self, params: dict[str, str], scope: str) -> str:
        realm = params["realm"]
        if not realm.startswith(("https://", "http://")):
            raise AuthError(f"the registry's token realm {realm!r} is not an http(s) URL")
        query = {key: value for key, value in (("service", params.get("service")),
                                               ("scope", params.get("scope") or scope)) if value}
        headers = {"Authorization": self._credentials.basic()} if self._credentials else {}
        try:
            async with self._session.get(realm, params=query, headers=headers, allow_redirects=False) as response:
                if response.status in (401, 403):
                    who = f"user {self._credentials.username!r}" if self._credentials else "anonymous pulls"
                    raise AuthError(f"the token service refused {who} ({response.status})")
                if response.status != 200:
                    raise AuthError(f"the token service at {realm} answered {response.status}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise AuthError(f"the token service at {realm} failed: {type(exc).__name__}") from None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(f"the token service at {realm} gave no token")
        return token
