"""The allocation step in a real gateway (auth on) in front of the engine simulator: a tenant's
guarantee holds while another floods the pool, borrowing stops at what guarantees leave, waiting
requests get capacity as it frees, and every grant is released exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import typer
from aiohttp.test_utils import TestServer
from typer.testing import CliRunner

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.config import Settings
from inferlab.resources import cli as resources_cli
from inferlab.testing import EngineSimulator

MODEL = "sim-model"


@pytest.fixture
async def gateway(sim: EngineSimulator, tmp_path: Path) -> AsyncIterator[tuple[TestServer, dict[str, str]]]:
    sim.script.update({"token_delay_s": 0.05, "completion_tokens": 8})
    settings = Settings(
        data_dir=tmp_path, features={"auth": True, "resources": True},
        auth={"pepper": "pepper-0123456789abcdef0123", "bootstrap": False},
        models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}],
        resources={"pools": {MODEL: {"sequences": 4, "kv_tokens": 100_000}}, "queue_timeout_s": 3.0},
    )
    server = TestServer(await create_app(settings))
    await server.start_server()
    services = server.app[SERVICES]
    assert services.admin is not None and services.resources is not None
    manager = services.admin.tenant_admin
    await manager.create(LOCAL_OPERATOR, "acme", overrides={"resources": {"guarantee_sequences": 2}})
    await manager.create(LOCAL_OPERATOR, "flood")
    keys = {}
    for tenant in ("acme", "flood"):
        user = await services.admin.auth.admin.create_user(LOCAL_OPERATOR, f"u-{tenant}", "member", tenant)
        created = await services.admin.auth.admin.create_key(LOCAL_OPERATOR, name="k", user_id=user.id, scopes=Scopes())
        keys[tenant] = created.token
    await services.resources.refresh()
    yield server, keys
    await server.close()


async def chat(session: aiohttp.ClientSession, server: TestServer, key: str) -> tuple[int, float, dict[str, Any]]:
    started = time.perf_counter()
    async with session.post(server.make_url("/v1/chat/completions"), headers={"Authorization": f"Bearer {key}"},
                            json={"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}) as r:
        body = await r.json()
        return r.status, time.perf_counter() - started, body


async def in_flight(server: TestServer) -> dict[str, int]:
    resources = server.app[SERVICES].resources
    assert resources is not None
    usage = (await resources.usage())[MODEL]
    return {t.tenant: t.held.sequences for t in usage.tenants}


async def test_a_guarantee_holds_while_another_tenant_floods(gateway: tuple[TestServer, dict[str, str]]) -> None:
    server, keys = gateway
    async with aiohttp.ClientSession() as session:
        flood = [asyncio.ensure_future(chat(session, server, keys["flood"])) for _ in range(8)]
        most = 0
        for _ in range(40):  # until the flood holds what it may (a loaded machine admits slowly)
            most = max(most, (await in_flight(server)).get("flood", 0))
            if most >= 2:
                break
            await asyncio.sleep(0.05)
        assert most == 2  # 4 sequences, 2 kept for acme's guarantee: flood borrows only 2
        acme = await asyncio.gather(*(chat(session, server, keys["acme"]) for _ in range(2)))
        assert [status for status, _, _ in acme] == [200, 200]
        assert max(seconds for _, seconds, _ in acme) < 1.0  # admitted at once, not queued behind the flood
        results = await asyncio.gather(*flood)
    assert [status for status, _, _ in results].count(200) == 8  # the flood waited its turn and was served
    assert sum((await in_flight(server)).values()) == 0  # every grant released


async def test_waiting_past_the_queue_timeout_is_a_429_naming_the_reason(
    gateway: tuple[TestServer, dict[str, str]], sim: EngineSimulator,
) -> None:
    server, keys = gateway
    sim.script.update({"token_delay_s": 0.6})  # each request holds its sequence ~5 s: longer than the 3 s queue
    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(*(chat(session, server, keys["flood"]) for _ in range(3)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200, 200, 429]
    refused = next(body for status, _, body in results if status == 429)
    assert refused["error"]["code"] == "pool_full"
    assert sum((await in_flight(server)).values()) == 0
    async with aiohttp.ClientSession() as session, session.get(server.make_url("/metrics")) as response:
        metrics = await response.text()
    assert 'inferlab_tenant_requests_refused_total{reason="pool_full",tenant="flood",tier="enterprise"} 1.0' in metrics


async def test_admin_report_and_reservations(gateway: tuple[TestServer, dict[str, str]]) -> None:
    server, _ = gateway
    services = server.app[SERVICES]
    assert services.resources is not None and services.admin is not None
    created = await services.admin.auth.admin.create_key(LOCAL_OPERATOR, name="root", user_id=(
        await services.admin.auth.admin.create_user(LOCAL_OPERATOR, "root", "platform-admin", "default")).id,
        scopes=Scopes(frozenset({"inference", "admin"})))
    headers = {"Authorization": f"Bearer {created.token}"}
    now = datetime.now(UTC)
    async with aiohttp.ClientSession(headers=headers) as session:
        body = {"tenant_id": "flood", "pool": MODEL, "sequences": 1, "start": now.isoformat(),
                "end": (now + timedelta(hours=1)).isoformat()}
        async with session.post(server.make_url("/admin/reservations"), json=body) as response:
            assert response.status == 201, await response.text()
        too_much = {**body, "sequences": 2}  # acme 2 + flood 1 + 2 more > 4
        async with session.post(server.make_url("/admin/reservations"), json=too_much) as response:
            assert response.status == 400 and (await response.json())["error"]["code"] == "reservation_conflict"
        async with session.get(server.make_url("/admin/resources")) as response:
            report = (await response.json())["data"][0]
    assert report["pool"] == MODEL and report["capacity"] == {"sequences": 4, "kv_tokens": 100_000}
    guarantees = {t["tenant"]: t["guarantee"]["sequences"] for t in report["tenants"]}
    assert guarantees["acme"] == 2 and guarantees["flood"] == 1  # the reservation is in force

    runner, cli_app = CliRunner(), typer.Typer()
    resources_cli.register(cli_app)
    base = str(server.make_url("/")).rstrip("/")
    printed = await asyncio.to_thread(runner.invoke, cli_app, ["resources", "report", "--url", base,
                                                               "--api-key", created.token])
    assert printed.exit_code == 0, printed.output
    assert "acme" in printed.output and "flood" in printed.output and "4 seq" in printed.output
    refused = await asyncio.to_thread(runner.invoke, cli_app, ["resources", "report", "--url", base,
                                                               "--api-key", "il-nope-nope"])
    assert refused.exit_code == 1 and "HTTP 401" in refused.output


async def test_guarantees_above_capacity_come_with_priced_scaling_advice(sim: EngineSimulator, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, features={"auth": True, "resources": True},
        auth={"pepper": "pepper-0123456789abcdef0123", "bootstrap": False},
        models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1", "parallel": 4}],
        resources={"pools": {MODEL: {"sequences": 4, "kv_tokens": 16_384, "plan_model": "llama-3.1-8b",
                                     "plan_hardware": ["l4", "rtx-4090"], "plan_engine": "vllm"}}},
    )
    server = TestServer(await create_app(settings))
    await server.start_server()
    try:
        services = server.app[SERVICES]
        assert services.admin is not None and services.resources is not None
        await services.admin.tenant_admin.create(LOCAL_OPERATOR, "big", overrides={"resources": {"guarantee_sequences": 6}})
        await services.resources.refresh()
        user = await services.admin.auth.admin.create_user(LOCAL_OPERATOR, "root", "platform-admin", "default")
        created = await services.admin.auth.admin.create_key(LOCAL_OPERATOR, name="root", user_id=user.id,
                                                            scopes=Scopes(frozenset({"inference", "admin"})))
        async with (aiohttp.ClientSession(headers={"Authorization": f"Bearer {created.token}"}) as session,
                    session.get(server.make_url("/admin/resources")) as response):
            report = (await response.json())["data"][0]
    finally:
        await server.close()
    assert report["overbooked"]["sequences"] == 2
    options = report["scaling"]["options"]
    priced = [o for o in options if o["usd_per_hour"] is not None]
    assert priced and all(o["replicas"] >= 1 and o["usd_per_month"] > 0 for o in priced)


async def test_a_pool_of_engines_that_report_their_capacity_is_allocated_from_it(
    sim: EngineSimulator, tmp_path: Path,
) -> None:
    sim.script.update({"max_concurrency": 6})
    settings = Settings(
        data_dir=tmp_path, features={"resources": True},
        models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1", "engine": "vllm",
                 "max_concurrency_per_replica": 6}],
    )
    server = TestServer(await create_app(settings))
    await server.start_server()
    try:
        resources = server.app[SERVICES].resources
        assert resources is not None
        capacity = resources.capacities[MODEL]  # read from the engine's /metrics at start
        assert (capacity.sequences, capacity.kv_tokens) == (6, 6 * 256 * 16)
        async with aiohttp.ClientSession() as session:
            status, _, _ = await chat(session, server, "unused")
        assert status == 200
        assert (await resources.usage())[MODEL].tenants[0].admitted == 1
    finally:
        await server.close()


async def test_an_allocator_store_that_does_not_answer_is_a_503_not_a_500(sim: EngineSimulator, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, features={"resources": True}, redis_url="redis://127.0.0.1:9/0",  # nothing listens
        models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}],
        resources={"backend": "redis", "pools": {MODEL: {"sequences": 4, "kv_tokens": 100_000}}},
    )
    server = TestServer(await create_app(settings))
    await server.start_server()  # the gateway starts: the pools are configured once Redis answers
    try:
        async with aiohttp.ClientSession() as session:
            status, _, body = await chat(session, server, "unused")
        assert status == 503 and "try again" in body["error"]["message"]
    finally:
        await server.close()
