"""JWT bearer tokens from a configured issuer, keys from a JWKS file."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from inferlab.app import create_app
from inferlab.config import Settings
from inferlab.testing import EngineSimulator

ISSUER = "https://issuer.test"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def jwt_client(sim: EngineSimulator, tmp_path: Path, signing_key: rsa.RSAPrivateKey) -> AsyncIterator[TestClient[Any, Any]]:
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    settings = Settings(
        data_dir=tmp_path, features={"auth": True},
        auth={"pepper": "p", "bootstrap": False,
              "jwt": {"issuer": ISSUER, "audience": "inferlab", "jwks_file": str(jwks), "role_map": {"ops": "tenant-admin"}}},
        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}],
    )
    async with TestClient(TestServer(await create_app(settings))) as client:
        yield client


def token(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "inferlab", "sub": "alice", "iat": now, "exp": now + 300, **claims}
    return pyjwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


async def status(client: TestClient[Any, Any], path: str, bearer: str) -> int:
    return (await client.get(path, headers={"Authorization": f"Bearer {bearer}"})).status


async def test_valid_token_is_a_principal(jwt_client: TestClient[Any, Any], signing_key: rsa.RSAPrivateKey) -> None:
    assert await status(jwt_client, "/v1/models", token(signing_key)) == 200
    assert await status(jwt_client, "/v1/models", token(signing_key, scope="admin")) == 403
    assert await status(jwt_client, "/admin/users", token(signing_key, scope="admin inference")) == 403  # member
    assert await status(jwt_client, "/admin/users", token(signing_key, scope="admin", role="ops", tenant="acme")) == 200


@pytest.mark.parametrize("claims", [{"iss": "https://evil.test"}, {"aud": "other"}, {"exp": int(time.time()) - 3600},
                                    {"tenant": "Not A Tenant!"}])
async def test_bad_tokens_are_401(jwt_client: TestClient[Any, Any], signing_key: rsa.RSAPrivateKey,
                                  claims: dict[str, Any]) -> None:
    assert await status(jwt_client, "/v1/models", token(signing_key, **claims)) == 401


async def test_foreign_signatures_and_hs256_are_401(jwt_client: TestClient[Any, Any]) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert await status(jwt_client, "/v1/models", token(other)) == 401
    forged = pyjwt.encode({"iss": ISSUER, "aud": "inferlab", "sub": "x", "exp": int(time.time()) + 60},
                          "secret-secret-secret-secret-secret", algorithm="HS256", headers={"kid": "k1"})
    assert await status(jwt_client, "/v1/models", forged) == 401
    assert await status(jwt_client, "/v1/models", "a.b.c") == 401
