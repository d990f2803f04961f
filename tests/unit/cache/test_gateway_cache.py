"""The response cache through the gateway: hits, misses, streams replayed, tenants isolated,
bypass, model versions, and non-deterministic requests never cached."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.auth.model import Tenant
from inferlab.config import Settings
from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.pytest_plugin import RedisNamespace

MODEL = "sim-model"


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=6)


def settings(sim: EngineSimulator, tmp_path: Path, backend: str, redis_url: str | None, **extra: Any) -> Settings:
    cache: dict[str, Any] = {"backend": backend}
    if backend == "redis":
        cache["redis_prefix"] = f"test:{uuid.uuid4().hex}:"
    return Settings(
        data_dir=tmp_path, features={"cache": True, **extra.pop("features", {})}, redis_url=redis_url, cache=cache,
        models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1", **extra.pop("model", {})}], **extra,
    )


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    if request.param == "redis":
        return "redis", str(request.getfixturevalue("redis_url"))
    return "memory", None


async def post(session: aiohttp.ClientSession, server: TestServer, body: dict[str, Any],
               headers: dict[str, str] | None = None) -> tuple[int, bytes, str | None]:
    async with session.post(server.make_url("/v1/chat/completions"), json=body, headers=headers) as response:
        return response.status, await response.read(), response.headers.get("x-inferlab-cache")


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "what is 2+2"}], "max_tokens": 6,
            "temperature": 0, **extra}


async def test_hit_after_miss_and_stream_replay(sim: EngineSimulator, tmp_path: Path, backend: tuple[str, str | None]) -> None:
    server = TestServer(await create_app(settings(sim, tmp_path, *backend)))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            first = await post(session, server, chat())
            second = await post(session, server, chat())
            assert first[0] == second[0] == 200 and first[2] == "miss" and second[2] == "hit"
            assert first[1] == second[1] and sim.stats.requests_total == 1
            streamed = await post(session, server, chat(stream=True))
            replayed = await post(session, server, chat(stream=True))
            assert streamed[2] == "miss" and replayed[2] == "hit" and sim.stats.requests_total == 2
            assert replayed[1] == streamed[1] and replayed[1].endswith(b"data: [DONE]\n\n")
            # not deterministic: never cached; bypass: neither read nor written; both say `bypass`
            assert (await post(session, server, chat(temperature=0.7)))[2] == "bypass"
            assert (await post(session, server, chat(temperature=0.7)))[2] == "bypass"
            assert (await post(session, server, chat(), {"x-inferlab-cache": "bypass"}))[2] == "bypass"
            bypass = {"x-inferlab-cache": "bypass"}
            assert (await post(session, server, chat(stream=True), bypass))[2] == "bypass"
            assert sim.stats.requests_total == 6
            opted = chat(temperature=0.7)
            assert (await post(session, server, opted, {"x-inferlab-cache": "use"}))[2] == "miss"
            assert (await post(session, server, opted, {"x-inferlab-cache": "use"}))[2] == "hit"
    finally:
        await server.close()


@pytest.mark.redis
async def test_a_new_model_version_misses(
    sim: EngineSimulator, tmp_path: Path, redis_namespace: RedisNamespace
) -> None:
    """Gateways restarted on one Redis: the same version hits, a new version never sees the old answers."""
    for version, expected in (("v1", "miss"), ("v1", "hit"), ("v2", "miss")):
        config = settings(sim, tmp_path, "redis", redis_namespace.url, model={"version": version})
        config.cache.redis_prefix = redis_namespace.prefix
        server = TestServer(await create_app(config))
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                assert (await post(session, server, chat()))[2] == expected
        finally:
            await server.close()


async def test_tenants_never_share_answers(sim: EngineSimulator, tmp_path: Path, backend: tuple[str, str | None]) -> None:
    app = await create_app(settings(sim, tmp_path, *backend, features={"auth": True},
                                    auth={"pepper": "pepper-cache-isolation-0123", "bootstrap": False,
                                          # isolation is the point here, not the 2 s store bound
                                          "store_timeout_s": 15}))
    server = TestServer(app)
    await server.start_server()
    try:
        stack = app[SERVICES].auth
        assert stack is not None
        tokens = []
        for tenant in ("acme", "globex"):
            await stack.store.add_tenant(Tenant(tenant, tenant, datetime.now(UTC)))
            user = await stack.admin.create_user(LOCAL_OPERATOR, "u", "member", tenant)
            created = await stack.admin.create_key(LOCAL_OPERATOR, name="k", user_id=user.id, scopes=Scopes())
            tokens.append(created.token)
        async with aiohttp.ClientSession() as session:
            acme = {"Authorization": f"Bearer {tokens[0]}"}
            globex = {"Authorization": f"Bearer {tokens[1]}"}
            assert (await post(session, server, chat(), acme))[2] == "miss"
            assert (await post(session, server, chat(), acme))[2] == "hit"
            assert (await post(session, server, chat(), globex))[2] == "miss"
            assert sim.stats.requests_total == 2
    finally:
        await server.close()
