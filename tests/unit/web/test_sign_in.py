"""Signing in to the dashboards over HTTP: an API key or a JWT, the cookie's lifetime, sign-out,
no open redirect, a wrong credential answered on the form."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.config import Settings
from inferlab.testing import EngineSimulator

ISSUER = "https://issuer.test"
Client = TestClient[Any, Any]


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def client(sim: EngineSimulator, tmp_path: Path, signing_key: rsa.RSAPrivateKey) -> AsyncIterator[Client]:
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    settings = Settings(
        data_dir=tmp_path, features={"auth": True},
        auth={"pepper": "p" * 16, "bootstrap": False,
              "jwt": {"issuer": ISSUER, "audience": "inferlab", "jwks_file": str(jwks)}},
        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}],
    )
    async with TestClient(TestServer(await create_app(settings))) as test_client:
        yield test_client


def jwt_token(key: rsa.RSAPrivateKey, ttl: int = 300) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "inferlab", "sub": "alice", "iat": now, "exp": now + ttl, "scope": "inference",
            "tenant": "default"}
    return pyjwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


async def sign_in(client: Client, credential: str, next_path: str = "") -> Any:
    form = await (await client.get("/ui/login")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    return await client.post("/ui/login", data={"credential": credential, "csrf_token": token.group(1),
                                                "next": next_path}, allow_redirects=False)


async def test_a_jwt_signs_in_for_no_longer_than_the_token(client: Client, signing_key: rsa.RSAPrivateKey) -> None:
    answer = await sign_in(client, jwt_token(signing_key, ttl=120))
    assert answer.status == 303 and answer.headers["Location"] == "/ui/"
    cookie = answer.cookies["inferlab_session"]
    assert 0 < int(cookie["max-age"]) <= 120 and cookie["httponly"] and cookie["samesite"] == "Strict"
    page = await client.get("/ui/")
    assert page.status == 200 and "alice" in await page.text()


async def test_an_api_key_signs_in_and_signing_out_ends_the_session(client: Client) -> None:
    stack = client.app[SERVICES].auth
    assert stack is not None
    user = await stack.admin.create_user(LOCAL_OPERATOR, "bob", "member", "default")
    created = await stack.admin.create_key(LOCAL_OPERATOR, name="k", user_id=user.id,
                                           scopes=Scopes(frozenset({"inference", "admin"})))
    answer = await sign_in(client, created.token, next_path="/ui/keys")
    assert answer.status == 303 and answer.headers["Location"] == "/ui/keys"
    page = await client.get("/ui/keys")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', await page.text())
    assert page.status == 200 and csrf is not None
    out = await client.post("/ui/logout", data={"csrf_token": csrf.group(1)}, allow_redirects=False)
    assert out.status == 303 and out.cookies["inferlab_session"].value == ""
    client.session.cookie_jar.update_cookies({"inferlab_session": ""})
    assert (await client.get("/ui/keys", allow_redirects=False)).status == 303


async def test_no_open_redirect_and_a_wrong_credential_stays_on_the_form(client: Client,
                                                                          signing_key: rsa.RSAPrivateKey) -> None:
    for target in ("//evil.test/x", "https://evil.test", "/admin/users", "/ui\\..\\x"):
        answer = await sign_in(client, jwt_token(signing_key), next_path=target)
        assert answer.status == 303 and answer.headers["Location"] == "/ui/", target
    wrong = await sign_in(client, "il-not-a-real-key-000000")
    assert wrong.status == 401 and "not valid" in await wrong.text()
    assert "inferlab_session" not in wrong.cookies
    short = await sign_in(client, "x")
    assert short.status == 400
