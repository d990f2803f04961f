"""Engine priority pass-through: with ``engine_priority`` the engine receives the request's class in
the body's ``priority`` (vLLM's convention: lower is earlier), whatever the client sent; without it
the body goes as it came."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from inferlab.backends.openai_compat import engine_priority
from inferlab.config import ModelConfig

from .conftest import MakeGateway


def test_classes_map_to_vllm_priorities_lower_first() -> None:
    assert [engine_priority(rank) for rank in (3, 2, 1, 0)] == [0, 1, 2, 3]
    assert engine_priority(9) == 0 and engine_priority(-1) == 3


async def test_the_engine_gets_the_class_as_priority(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(slots=4, model={"engine_priority": True})
    for tenant, tier in (("freeco", "free"), ("proco", "pro"), ("ent", "enterprise")):
        await gateway.tenant(tenant, tier)
    seen = {}
    for tenant in ("freeco", "proco", "ent"):
        response = await gateway.client.post("/v1/chat/completions", headers={
            "Authorization": f"Bearer {gateway.keys[tenant]}"}, json={
            "model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2,
            "priority": -100})  # a client cannot jump the engine's queue
        assert response.status == 200
        assert gateway.sim.last_request is not None
        seen[tenant] = gateway.sim.last_request["priority"]
    assert seen == {"freeco": 3, "proco": 2, "ent": 1}


async def test_without_the_flag_the_body_is_unchanged(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(slots=4)
    await gateway.tenant("ent", "enterprise")
    status, _, _ = await gateway.chat("ent")
    assert status == 200 and gateway.sim.last_request is not None
    assert "priority" not in gateway.sim.last_request


def test_engine_priority_needs_an_openai_engine() -> None:
    with pytest.raises(ValidationError, match="engine_priority needs"):
        ModelConfig(name="m", backend="llamacpp", path="model.gguf", engine_priority=True)
