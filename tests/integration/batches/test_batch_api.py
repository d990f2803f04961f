"""The Batch API's refusals and bounds, in process (the gateway on a real socket, the engine
simulator behind it, metering on for the store): every bad input an OpenAI-shaped 4xx naming
what is wrong, nothing kept from a refused upload."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from inferlab.config import Settings
from inferlab.store import Database
from inferlab.testing import EngineSimulator

from ..api.harness import running_gateway

MODEL = "sim-model"
URL = "/v1/chat/completions"
PRICE = {"input_per_million": 10, "output_per_million": 20, "batch_input_per_million": 5,
         "batch_output_per_million": 10}


def jsonl(count: int, **body: Any) -> bytes:
    return "\n".join(json.dumps({"custom_id": f"c{i}", "method": "POST", "url": URL, "body": {
        "model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, **body}})
        for i in range(count)).encode()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, Path]]:
    async with EngineSimulator(model=MODEL) as sim:
        settings = Settings(models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}],
                            data_dir=tmp_path, features={"metering": True},
                            batches={"max_file_bytes": 4096, "poll_s": 0.05},
                            metering={"ship_interval_s": 0.05, "flush_interval_ms": 20},
                            pricing={"models": {MODEL: PRICE}})
        async with running_gateway(settings) as port, aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            yield http, tmp_path


async def upload(http: aiohttp.ClientSession, content: bytes, purpose: str = "batch") -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("purpose", purpose)
    form.add_field("file", content, filename="in.jsonl")
    async with http.post("/v1/files", data=form) as response:
        return response.status, await response.json()


async def create(http: aiohttp.ClientSession, **body: Any) -> tuple[int, Any]:
    async with http.post("/v1/batches", json={"endpoint": URL, "completion_window": "24h", **body}) as response:
        return response.status, await response.json()


async def test_uploads_are_bounded_and_checked(gateway: tuple[aiohttp.ClientSession, Path]) -> None:
    http, data_dir = gateway
    status, body = await upload(http, b"x" * 5000)
    assert status == 413 and body["error"]["param"] == "file"
    status, body = await upload(http, jsonl(1), purpose="fine-tune")
    assert status == 400 and body["error"]["param"] == "purpose"
    async with http.post("/v1/files", json={"purpose": "batch"}) as response:
        assert response.status == 400 and (await response.json())["error"]["param"] == "file"
    assert not [p for p in (data_dir / "files").rglob("*") if p.is_file()]  # nothing kept of the refused ones
    async with http.get("/v1/files") as response:
        assert (await response.json())["data"] == []


async def test_a_bad_input_is_refused_naming_its_line(gateway: tuple[aiohttp.ClientSession, Path]) -> None:
    http, _ = gateway
    _, good = await upload(http, jsonl(2))
    lines = jsonl(2).splitlines()
    _, bad = await upload(http, lines[0] + b"\n" + lines[1].replace(b'"max_tokens": 4', b'"max_tokens": -1'))
    status, body = await create(http, input_file_id=bad["id"])
    assert status == 400 and body["error"]["message"].startswith("Line 2 of the input file")
    assert body["error"]["param"] == "input_file_id"
    for fields, param in (({"input_file_id": good["id"], "completion_window": "1h"}, "completion_window"),
                          ({"input_file_id": good["id"], "endpoint": "/v1/responses"}, "endpoint"),
                          ({"input_file_id": good["id"], "priority": 1}, "priority")):
        status, body = await create(http, **fields)
        assert status == 400 and body["error"]["param"] == param
    status, body = await create(http, input_file_id="file-nope")
    assert status == 404 and body["error"]["code"] == "file_not_found"


async def test_listing_and_cancelling_a_finished_batch(gateway: tuple[aiohttp.ClientSession, Path]) -> None:
    http, _ = gateway
    _, uploaded = await upload(http, jsonl(3))
    ids = [(await create(http, input_file_id=uploaded["id"]))[1]["id"] for _ in range(3)]
    for batch_id in ids:
        for _ in range(200):
            async with http.get(f"/v1/batches/{batch_id}") as response:
                batch = await response.json()
            if batch["status"] == "completed":
                break
            await asyncio.sleep(0.05)
        assert batch["status"] == "completed" and batch["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    async with http.get("/v1/batches", params={"limit": "2"}) as response:
        page = await response.json()
    assert [b["id"] for b in page["data"]] == ids[::-1][:2] and page["has_more"]
    async with http.get("/v1/batches", params={"limit": "2", "after": page["last_id"]}) as response:
        assert [b["id"] for b in (await response.json())["data"]] == [ids[0]]
    async with http.post(f"/v1/batches/{ids[0]}/cancel") as response:
        assert response.status == 400 and (await response.json())["error"]["code"] == "batch_not_cancellable"
    async with http.delete(f"/v1/files/{uploaded['id']}") as response:
        assert (await response.json())["deleted"] is True
    async with http.get(f"/v1/files/{uploaded['id']}/content") as response:
        assert response.status == 404


async def test_batch_lines_are_metered_at_the_batch_price(gateway: tuple[aiohttp.ClientSession, Path]) -> None:
    http, data_dir = gateway
    _, uploaded = await upload(http, jsonl(2))
    _, batch = await create(http, input_file_id=uploaded["id"])
    async with http.post(URL, json={"model": MODEL, "max_tokens": 4,
                                    "messages": [{"role": "user", "content": "hi"}]}) as response:
        assert response.status == 200  # one interactive call, at the list price
    database = Database(f"sqlite+aiosqlite:///{data_dir / 'inferlab.db'}")
    try:
        for _ in range(200):
            async with database.engine.connect() as connection:
                rows = (await connection.execute(text(
                    "SELECT route, prompt_tokens, completion_tokens, price FROM usage_events"))).all()
            if len(rows) == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        await database.close()
    assert sorted(row[0] for row in rows) == ["/v1/batches", "/v1/batches", URL]
    for route, prompt, completion, price in rows:
        input_rate, output_rate = (5, 10) if route == "/v1/batches" else (10, 20)
        expected = (Decimal(prompt) * input_rate + Decimal(completion) * output_rate) / 1_000_000
        assert Decimal(price) / 10**10 == expected and prompt > 0 and completion > 0  # SQLite: 10^-10 USD units
    assert batch["status"] == "validating"
