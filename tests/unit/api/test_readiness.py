"""/ready: one model down does not fail the gateway; a fail-closed dependency down does; per-model
readiness for load balancers (`/ready?model=NAME`); draining; the body lists models and dependencies."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from inferlab.app import GATEWAY, create_app
from inferlab.config import load_settings
from inferlab.testing import EngineSimulator
from inferlab.testing.gateway_process import free_port
from inferlab.testing.pytest_plugin import MakeSim
from inferlab.testing.tcp_proxy import TcpProxy

UP, DOWN = "sim-model", "down-model"
FAST_PROBES = {"probe_interval_s": 0.05, "probe_timeout_s": 0.5, "unhealthy_threshold": 1}


def models(sim: EngineSimulator, *, down: bool = True) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = [
        {"name": UP, "backend": "openai", "url": f"{sim.base_url}/v1", "health": FAST_PROBES}
    ]
    if down:  # nothing listens there: its probes fail, its replica is taken out
        listed.append({"name": DOWN, "backend": "openai", "url": f"http://127.0.0.1:{free_port()}/v1",
                       "health": FAST_PROBES})
    return listed


async def start(overrides: dict[str, Any]) -> TestServer:
    server = TestServer(await create_app(load_settings(overrides=overrides)))
    await server.start_server()
    return server


async def ready(server: TestServer, model: str | None = None) -> tuple[int, dict[str, Any]]:
    params = {"model": model} if model is not None else {}
    async with aiohttp.ClientSession() as session, session.get(server.make_url("/ready"), params=params) as response:
        return response.status, await response.json()


async def until(server: TestServer, status: int, model: str | None = None, within_s: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while True:
        got, body = await ready(server, model)
        if got == status:
            return body
        assert time.monotonic() < deadline, f"/ready stayed {got}: {body}"
        await asyncio.sleep(0.05)


async def test_one_model_down_does_not_fail_the_gateway(sim: EngineSimulator) -> None:
    server = await start({"models": models(sim)})
    try:
        body = await until(server, 200)  # first both look routable; then the down one is taken out
        deadline = time.monotonic() + 5
        while body["models"][DOWN]["ready"]:
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.05)
            status, body = await ready(server)
            assert status == 200, body
        assert body["status"] == "degraded"
        assert body["models"][UP]["ready"] is True
        replica = body["models"][DOWN]["replicas"][0]
        assert replica["routable"] is False and replica["healthy"] is False
        assert "url" not in replica  # the public probe does not map the network behind the gateway
    finally:
        await server.close()


async def test_per_model_readiness_for_load_balancers(sim: EngineSimulator) -> None:
    server = await start({"models": models(sim)})
    try:
        await until(server, 503, DOWN)
        status, body = await ready(server, UP)
        assert status == 200 and body["status"] == "ready" and body["model"] == UP
        assert list(body["models"]) == [UP]
        status, body = await ready(server, DOWN)
        assert status == 503 and body["status"] == "not_ready" and body["models"][DOWN]["ready"] is False
        status, body = await ready(server, "no-such-model")
        assert status == 404
        assert body["error"]["type"] == "not_found_error" and body["error"]["code"] == "model_not_found"
    finally:
        await server.close()


async def test_every_model_down_is_not_ready(sim: EngineSimulator) -> None:
    server = await start({"models": models(sim)[1:]})
    try:
        body = await until(server, 503)
        assert body["status"] == "not_ready" and body["models"][DOWN]["ready"] is False
    finally:
        await server.close()


async def test_draining_is_not_ready_for_any_model(sim: EngineSimulator) -> None:
    server = await start({"models": models(sim, down=False)})
    try:
        await until(server, 200, UP)
        server.app[GATEWAY].drain.begin()
        for model in (None, UP):
            status, body = await ready(server, model)
            assert status == 503 and body["status"] == "draining"
    finally:
        await server.close()


def quota_settings(sim: EngineSimulator, redis_url: str, **failure: str) -> dict[str, Any]:
    return {
        "features": {"ratelimit": True},
        "redis_url": redis_url,
        "ratelimit": {"limits": [{"scope": "key", "rpm": 1000}], "redis_timeout_s": 0.2, "redis_retry_s": 0.2,
                      "failure": failure},
        "quota": {"limits": [{"scope": "key", "daily_tokens": 1_000_000}]},
        "models": models(sim, down=False),
    }


@pytest.mark.redis
async def test_redis_down_with_a_fail_closed_limit_is_not_ready(sim: EngineSimulator, redis_url: str) -> None:
    host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    server = await start(quota_settings(sim, f"redis://127.0.0.1:{proxy.port}/0"))  # quotas fail closed
    try:
        body = await until(server, 200)
        assert body["dependencies"]["redis"] == {**body["dependencies"]["redis"], "status": "up", "critical": True}
        await proxy.cut()
        started = time.monotonic()
        body = await until(server, 503)
        assert time.monotonic() - started < 2.5
        assert body["status"] == "not_ready" and body["dependencies"]["redis"]["status"] == "down"
        assert body["models"][UP]["ready"] is True
        status, _ = await ready(server, UP)
        assert status == 503  # every request to it would fail too
        proxy.pause()
        await proxy.restore()  # listening again, but nothing answers: a hung Redis
        started = time.monotonic()
        status, body = await ready(server)
        assert status == 503 and time.monotonic() - started < 1.0, "a probe waited on Redis"
        proxy.resume()
        await until(server, 200)
    finally:
        await server.close()
        await proxy.stop()


@pytest.mark.redis
async def test_redis_down_with_fail_open_limits_only_stays_ready(sim: EngineSimulator) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    server = await start(quota_settings(sim, closed, quota="fail-open-local"))
    try:
        await until(server, 200, UP)
        deadline = time.monotonic() + 3
        while True:
            status, body = await ready(server)
            if body["dependencies"]["redis"]["status"] == "down":
                break
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.05)
        assert status == 200 and body["status"] == "degraded"
        assert body["dependencies"]["redis"]["critical"] is False
    finally:
        await server.close()


@pytest.mark.redis
async def test_dependency_checks_are_cached(sim: EngineSimulator, redis_url: str) -> None:
    host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    server = await start(quota_settings(sim, f"redis://127.0.0.1:{proxy.port}/0"))
    try:
        await until(server, 200)
        forwarded = proxy.forwarded
        for _ in range(20):
            await ready(server)
        assert proxy.forwarded - forwarded <= 4  # at most one ping (and its answer) per TTL, not one per probe
        _, body = await ready(server)
        assert body["dependencies"]["redis"]["checked_s_ago"] < 5
    finally:
        await server.close()
        await proxy.stop()


async def test_an_engine_refusing_the_gateways_credentials_shows_on_ready(
    sim: EngineSimulator, make_sim: MakeSim
) -> None:
    refusing = await make_sim(model="refusing")
    refusing.script.update({"fail_status": 401, "fail_next": -1})
    listed = [*models(sim, down=False),
              {"name": "refusing", "backend": "openai", "url": f"{refusing.base_url}/v1", "api_key": "wrong"}]
    server = await start({"models": listed})
    try:
        async with aiohttp.ClientSession() as session:
            body = {"model": "refusing", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
            async with session.post(server.make_url("/v1/chat/completions"), json=body) as response:
                assert response.status == 502
        status, ready_body = await ready(server)
        assert status == 200 and ready_body["status"] == "degraded"
        replica = ready_body["models"]["refusing"]["replicas"][0]
        assert replica["misconfigured"] is True and replica["routable"] is False
        assert replica["error"] == "engine rejected the gateway's credentials (HTTP 401)"
        assert (await ready(server, "refusing"))[0] == 503
        assert (await ready(server, UP))[0] == 200
    finally:
        await server.close()
