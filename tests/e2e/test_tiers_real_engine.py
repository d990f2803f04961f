"""Tiers end to end: a live `inferlab serve` in front of a real llama.cpp engine (SmolLM2-135M), the
official openai SDK as the client, tenants made through the admin API with the bootstrap key.

Two model names are served by the one engine: ``smollm2`` and ``pro-smollm2``. The ``freeco``
tenant is on the shipped free tier, overridden to ``smollm2`` alone; ``squeezeco`` is on a
configured tier that clamps ``max_tokens`` to 8.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import orjson
import pytest

from inferlab.testing.gateway_process import GatewayProcess, llama_server

pytestmark = pytest.mark.engine
PEPPER = "e2e-tiers-pepper-0123456789"
STORY = [{"role": "user", "content": "Write a very long story about a dragon who learns to count."}]


@pytest.fixture(scope="module")
def engine(llama_server_path: Path, smollm2_gguf: Path) -> Iterator[str]:
    """One llama-server process, run by the test as an operator runs an engine of their own."""
    with llama_server(llama_server_path, smollm2_gguf, ctx_size=4096, parallel=2) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(engine: str) -> Iterator[GatewayProcess]:
    models = [{"name": name, "backend": "openai", "url": f"{engine}/v1", "engine": "llamacpp"}
              for name in ("smollm2", "pro-smollm2")]
    config = {
        "features": {"auth": True},
        "auth": {"pepper": PEPPER, "key_cache_ttl_s": 1.0},
        "tenants": {"tiers": [{"name": "squeeze", "models": ["smollm2"], "max_tokens": 8, "over_cap": "clamp"}]},
        "models": models,
        "logging": {"level": "INFO"},
    }
    process = GatewayProcess(config).start(timeout=60)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def admin(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    root = next(word for line in gateway.logs().splitlines() for word in line.split() if word.startswith("il-"))
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {root}"}, timeout=10) as client:
        yield client


def tenant_key(admin: httpx.Client, tenant: dict[str, Any]) -> str:
    assert admin.post("/admin/tenants", json=tenant).status_code == 201
    user = admin.post("/admin/users", json={"name": "dev", "tenant_id": tenant["id"]}).json()
    return str(admin.post("/admin/keys", json={"name": "sdk", "user_id": user["id"]}).json()["key"])


@pytest.fixture(scope="module")
def free(gateway: GatewayProcess, admin: httpx.Client) -> Iterator[openai.OpenAI]:
    key = tenant_key(admin, {"id": "freeco", "tier": "free", "overrides": {"models": ["smollm2"]}})
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=60) as sdk:
        yield sdk


def test_a_free_key_cannot_use_the_pro_model(free: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError) as refused:
        free.chat.completions.create(model="pro-smollm2", messages=STORY, max_tokens=4)
    body: Any = refused.value.body
    assert body["code"] == "model_not_in_tier" and "free tier" in body["message"]
    assert refused.value.response.headers["x-inferlab-tier"] == "free"
    assert [model.id for model in free.models.list().data] == ["smollm2"]

    raw = free.chat.completions.with_raw_response.create(model="smollm2", messages=STORY, max_tokens=4)
    assert raw.headers["x-inferlab-tier"] == "free"
    reply = raw.parse()
    assert reply.choices[0].message.content and reply.usage is not None and reply.usage.completion_tokens <= 4


def test_max_tokens_over_the_cap_is_refused_or_clamped(gateway: GatewayProcess, admin: httpx.Client,
                                                       free: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        free.chat.completions.create(model="smollm2", messages=STORY, max_tokens=600)  # free: 512
    body: Any = refused.value.body
    assert (body["code"], body["param"]) == ("max_tokens_over_tier_cap", "max_tokens")

    key = tenant_key(admin, {"id": "squeezeco", "tier": "squeeze"})
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=60) as squeeze:
        reply = squeeze.chat.completions.create(model="smollm2", messages=STORY, max_tokens=200, temperature=0)
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 8
    assert reply.choices[0].finish_reason == "length"


def test_a_suspended_tenants_running_stream_ends_with_one_error_event(admin: httpx.Client,
                                                                      free: openai.OpenAI) -> None:
    events: list[bytes] = []
    with free.chat.completions.with_streaming_response.create(
        model="smollm2", messages=STORY, max_tokens=500, temperature=0, stream=True,
        extra_body={"ignore_eos": True},  # llama.cpp: generate all 500, so only the suspension ends it early
    ) as response:
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                events.append(line.encode())
                break
        suspended = admin.post("/admin/tenants/freeco/suspend")
        assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
        events += [line.encode() for line in lines if line.startswith("data: ")]
    errors = [event for event in events if event.startswith(b'data: {"error"')]
    assert len(errors) == 1 and events[-1] == errors[0] and b"data: [DONE]" not in events
    assert orjson.loads(errors[0][len(b"data: "):])["error"]["code"] == "tenant_suspended"
    assert b"chat.completion.chunk" in events[0] and len(events) - 1 < 400  # cut short, far from the 500 asked

    with pytest.raises(openai.PermissionDeniedError) as refused:
        free.models.list()
    body: Any = refused.value.body
    assert body["code"] == "tenant_suspended"
    assert admin.post("/admin/tenants/freeco/resume").status_code == 200
    assert [model.id for model in free.models.list().data] == ["smollm2"]
