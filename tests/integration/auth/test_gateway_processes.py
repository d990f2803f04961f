"""Real `inferlab serve` processes sharing one store: revocation across replicas, bootstrap, refusal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from inferlab.auth import ALL_SCOPES, LOCAL_OPERATOR, IdentityAdmin, Scopes
from inferlab.store import Database, SqlIdentityStore, head_revision, upgrade
from inferlab.testing import EngineSimulator
from inferlab.testing.gateway_process import GatewayProcess

PEPPER = "integration-pepper-shared-by-replicas"
TTL_S = 1.0


def config(sim: EngineSimulator, db_url: str, **auth: Any) -> dict[str, Any]:
    return {
        "features": {"auth": True},
        "database_url": db_url,
        "auth": {"pepper": PEPPER, "key_cache_ttl_s": TTL_S, "last_used_flush_s": 0.5, **auth},
        "models": [{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}],
        "logging": {"level": "DEBUG"},
    }


async def start(gateway: GatewayProcess) -> GatewayProcess:
    return await asyncio.to_thread(gateway.start)


async def status(session: aiohttp.ClientSession, url: str, key: str, method: str = "GET") -> int:
    async with session.request(method, url, headers={"Authorization": f"Bearer {key}"}) as response:
        await response.read()
        return response.status


async def test_revocation_reaches_a_second_gateway_within_the_ttl(sim: EngineSimulator, tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    database = Database(db_url)
    await upgrade(database)
    admin = IdentityAdmin(SqlIdentityStore(database), PEPPER.encode())
    root = await admin.create_user(LOCAL_OPERATOR, "root", "platform-admin")
    root_key = (await admin.create_key(LOCAL_OPERATOR, name="root", user_id=root.id, scopes=ALL_SCOPES)).token
    alice = await admin.create_user(LOCAL_OPERATOR, "alice", "member")
    canary = (await admin.create_key(LOCAL_OPERATOR, name="canary", user_id=alice.id, scopes=Scopes())).token
    await database.close()

    a = GatewayProcess(config(sim, db_url, bootstrap=False))
    b = GatewayProcess(config(sim, db_url, bootstrap=False))
    try:
        await asyncio.gather(start(a), start(b))
        async with aiohttp.ClientSession() as session:
            for gateway in (a, b):
                assert await status(session, gateway.url + "/v1/models", canary) == 200
            key_id = canary.split("-")[1]
            assert await status(session, f"{a.url}/admin/keys/{key_id}/revoke", root_key, "POST") == 200
            revoked_at = time.monotonic()
            assert await status(session, a.url + "/v1/models", canary) == 401  # the revoking replica: at once
            while await status(session, b.url + "/v1/models", canary) == 200:
                assert time.monotonic() - revoked_at < TTL_S + 0.5, "the second gateway still accepts a revoked key"
                await asyncio.sleep(0.05)
            assert time.monotonic() - revoked_at <= TTL_S + 0.5
            await asyncio.sleep(0.8)  # a last-used flush
            async with session.get(f"{a.url}/admin/keys/{key_id}", headers={"x-api-key": root_key}) as response:
                assert (await response.json())["last_used_at"] is not None
    finally:
        a.stop()
        b.stop()
    for gateway in (a, b):
        logs = gateway.logs()
        assert '"path": "/v1/models"' in logs or "/v1/models" in logs
        assert canary not in logs and canary.split("-", 2)[2] not in logs and PEPPER not in logs


async def test_first_start_prints_a_platform_admin_key_once(sim: EngineSimulator, tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'boot.db'}"
    first = GatewayProcess(config(sim, db_url))
    try:
        await start(first)
        printed = [word for line in first.logs().splitlines() for word in line.split() if word.startswith("il-")]
        assert len(printed) == 1
        key = printed[0]
        for line in first.logs().splitlines():  # never in a structured log line
            if line.startswith("{"):
                assert key not in line
        async with aiohttp.ClientSession() as session:
            assert await status(session, first.url + "/admin/users", key) == 200
            assert await status(session, first.url + "/admin/backends", key) == 200
    finally:
        first.stop()
    second = GatewayProcess(config(sim, db_url))
    try:
        await start(second)
        assert "il-" not in second.logs()
    finally:
        second.stop()


def test_serve_refuses_a_remote_address_without_auth(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "inferlab", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "authentication is off" in result.stderr


def test_db_upgrade_uses_the_database_url_from_the_environment(tmp_path: Path) -> None:
    env_db = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    result = subprocess.run([sys.executable, "-m", "inferlab", "db", "upgrade", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "INFERLAB_DATABASE_URL": env_db})
    assert result.returncode == 0 and result.stdout.strip() == head_revision(), result.stderr
    assert (tmp_path / "x.db").exists()
