"""A real token service for a real registry's token auth (the distribution spec's ``auth.token``),
for tests: it signs JWTs with a key generated at start, whose self-signed certificate the registry
trusts (``rootcertbundle``); each token carries that certificate in its ``x5c`` header.

``GET /token?service=...&scope=repository:<name>:pull,push`` with HTTP Basic credentials of a known
user grants what was asked; anonymous requests (no credentials) are granted ``pull`` on repositories
under ``public/`` only — elsewhere they get a token with no access, which the registry refuses, as
Docker Hub does for a private repository. Wrong credentials get ``401``. ``requests`` records what
each call carried (tests check who asked for what).
"""

from __future__ import annotations

import base64
import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVICE = "inferlab-test-registry"
ISSUER = "inferlab-test-token-service"


@dataclass
class TokenRequest:
    user: str | None
    scope: str | None
    service: str | None


@dataclass
class TokenService:
    users: dict[str, str] = field(default_factory=dict)
    requests: list[TokenRequest] = field(default_factory=list)
    ttl_s: int = 300

    def __post_init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
                            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                            .sign(self._key, hashes.SHA256()))
        self._server: TestServer | None = None

    def write_certificate(self, path: Path) -> Path:
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    @property
    def realm(self) -> str:
        assert self._server is not None, "start() first"
        return str(self._server.make_url("/token"))

    async def start(self) -> TokenService:
        app = web.Application()
        app.router.add_get("/token", self._token)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    def _user(self, request: web.Request) -> tuple[bool, str | None]:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return True, None
        try:
            user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            return False, None
        return self.users.get(user) == password, user

    async def _token(self, request: web.Request) -> web.Response:
        valid, user = self._user(request)
        scope = request.query.get("scope")
        self.requests.append(TokenRequest(user, scope, request.query.get("service")))
        if not valid:
            return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                     status=401)
        return web.json_response({"token": self.issue(user, scope), "expires_in": self.ttl_s})

    def grant(self, user: str | None, scope: str | None) -> list[dict[str, Any]]:
        access: list[dict[str, Any]] = []
        for item in (scope or "").split(" "):
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind != "repository" or not name:
                continue
            wanted = [action for action in actions.split(",") if action]
            allowed = wanted if user is not None else [a for a in wanted if a == "pull" and name.startswith("public/")]
            access.append({"type": kind, "name": name, "actions": allowed})
        return access

    def issue(self, user: str | None, scope: str | None) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user or "", "aud": SERVICE, "exp": now + self.ttl_s, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": self.grant(user, scope)}
        x5c = base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"x5c": [x5c]})
