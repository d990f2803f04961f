"""``/v1/planning/...`` on a plain aiohttp app with the gateway's error middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from inferlab.api.middleware import build_middleware
from inferlab.api.planning import add_planning_routes
from inferlab.planning import load_catalogue


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[build_middleware(None, logging.getLogger("test.planning"))])
    add_planning_routes(app, load_catalogue())
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_vram(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.post("/v1/planning/vram", json={"model": "llama-3.1-70b", "gpu": "h100-sxm", "gpus": 2,
                                                        "quant": "fp8", "engine": "vllm", "context": 8192})
    assert resp.status == 200
    data = await resp.json()
    assert data["fits"] is True and data["devices"] == 2


async def test_estimate_cost_capacity(client: TestClient[web.Request, web.Application]) -> None:
    base = {"model": "llama-3.1-8b", "gpu": "h100-sxm", "quant": "fp8", "engine": "vllm"}
    resp = await client.post("/v1/planning/estimate", json={**base, "concurrency": 16})
    assert resp.status == 200 and (await resp.json())["estimate"]["batch"] == 16
    resp = await client.post("/v1/planning/cost", json={**base, "utilisation": 0.6})
    assert resp.status == 200 and (await resp.json())["rented_usd_per_mtok"] > 0
    resp = await client.post("/v1/planning/capacity", json={**base, "users": 5000})
    assert resp.status == 200 and (await resp.json())["plan"]["feasible"] is True


async def test_cost_of_a_model_that_does_not_fit_has_no_price(
    client: TestClient[web.Request, web.Application],
) -> None:
    body = {"model": "llama-3.1-70b", "gpu": "h100-sxm", "quant": "fp16", "engine": "vllm"}
    resp = await client.post("/v1/planning/cost", json=body)
    assert resp.status == 200
    data = await resp.json()
    assert data["fits"] is False and "does not fit" in data["reason"]
    assert all(data[k] is None for k in ("owned", "rented", "owned_usd_per_mtok", "rented_usd_per_mtok",
                                         "owned_usd_per_request", "rented_usd_per_request"))
    resp = await client.post("/v1/planning/cost", json={**body, "gpus": 2, "utilisation": 0.5, "hours_per_day": 12,
                                                         "billing_increment_s": 3600})
    data = await resp.json()
    assert data["fits"] is True and data["rented_hours_per_month"] == pytest.approx(365)
    estimate = await (await client.post("/v1/planning/estimate", json={**body, "gpus": 2, "context": 8192})).json()
    assert estimate["fits"] is True and estimate["bandwidth_gbps"] == 3350
    assert estimate["saturated"]["bandwidth_bound_output_tokens_per_s"] > estimate["saturated"]["output_tokens_per_s"]


async def test_catalogue(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/v1/planning/catalogue")
    data = await resp.json()
    ids = {a["id"] for a in data["accelerators"]}
    assert {"rtx-4090", "mi300x", "tpu-v6e", "apple-m1"} <= ids
    h100 = next(a for a in data["accelerators"] if a["id"] == "h100-sxm")
    assert h100["sources"]["bandwidth_gbps"]["source"]
    assert data["billing"]["lambda"]["increment_s"] == 60 and data["billing"]["lambda"]["ref"]["source"]


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        ({"model": "llama-3.1-8b", "gpu": "rtx-9090"}, "gpu", "rtx-4090"),
        ({"model": "llama-3.1-8b", "gpu": "rtx-4090", "context": -1}, "context", "greater than 0"),
        ({"model": "llama-3.1-8b", "gpu": "rtx-4090", "quant": "Q9"}, "quant", "Q4_K_M"),
        ({"model": "llama-3.1-8b", "gpu": "rtx-4090", "surprise": 1}, "surprise", "Extra inputs"),
        ({"gpu": "rtx-4090"}, "model", "required"),
    ],
)
async def test_bad_input_is_400_openai_shaped(
    client: TestClient[web.Request, web.Application], body: dict[str, object], param: str, needle: str
) -> None:
    resp = await client.post("/v1/planning/vram", json=body)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert needle in error["message"]


async def test_invalid_json(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.post("/v1/planning/cost", data=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    resp = await client.post("/v1/planning/cost", data=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert resp.status == 400
