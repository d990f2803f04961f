"""The tier on every request, through a real gateway with auth on, in front of the engine simulator:
models and features outside the tier (403 naming it), caps refused or clamped (the body the engine
received is checked), the ``x-inferlab-tier`` header, ``/v1/models`` filtered, the planning API,
and the tier's default limits."""

from __future__ import annotations

from typing import Any

from inferlab.testing import SimulatorScript

from .conftest import Gateway, h

HELLO = [{"role": "user", "content": "hello"}]
VRAM = {"model": "llama-3.1-8b", "weights": "fp16", "context_tokens": 4096}


def chat(model: str = "sim-model", **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": HELLO, **fields}


async def test_a_model_outside_the_tier_is_refused_and_not_listed(gateway: Gateway) -> None:
    await gateway.tenant("basic-co", "basic")
    basic = await gateway.key("basic-co")
    status, body, headers = await gateway.call(basic, "POST", "/v1/chat/completions", chat("pro-model"))
    assert status == 403 and body["error"]["code"] == "model_not_in_tier" and body["error"]["param"] == "model"
    assert "basic tier" in body["error"]["message"] and "pro-model" in body["error"]["message"]
    assert headers["x-inferlab-tier"] == "basic"  # on the error too
    assert gateway.sim.requests_total == 0

    status, body, headers = await gateway.call(basic, "POST", "/v1/chat/completions", chat())
    assert status == 200 and headers["x-inferlab-tier"] == "basic" and body["choices"][0]["message"]["content"]
    _, listed, headers = await gateway.call(basic, "GET", "/v1/models")
    assert [m["id"] for m in listed["data"]] == ["sim-model"] and headers["x-inferlab-tier"] == "basic"
    assert (await gateway.call(basic, "GET", "/v1/models/sim-model"))[0] == 200
    status, body, _ = await gateway.call(basic, "GET", "/v1/models/pro-model")
    assert status == 403 and body["error"]["code"] == "model_not_in_tier"

    # the default tenant is on the default tier (enterprise): everything
    status, listed, headers = await gateway.call(gateway.root, "GET", "/v1/models")
    assert sorted(m["id"] for m in listed["data"]) == ["pro-model", "sim-model"]
    assert headers["x-inferlab-tier"] == "enterprise"


async def test_features_outside_the_tier_are_refused_before_the_engine(gateway: Gateway) -> None:
    await gateway.tenant("basic-co", "basic")
    await gateway.tenant("pro-co", "pro")
    basic, pro = await gateway.key("basic-co"), await gateway.key("pro-co")
    refused = [
        ("POST", "/v1/chat/completions", chat(stream=True), "streaming"),
        ("POST", "/v1/completions", {"model": "sim-model", "prompt": "hi", "stream": True}, "streaming"),
        ("POST", "/v1/embeddings", {"model": "sim-model", "input": "hi"}, "embeddings"),
        ("POST", "/v1/completions", {"model": "sim-model", "prompt": "def f(", "suffix": "\n", "max_tokens": 4},
         "code"),
        ("POST", "/v1/planning/vram", VRAM, "planning"),
        ("GET", "/v1/planning/catalogue", None, "planning"),
    ]
    for method, path, body, feature in refused:
        status, payload, headers = await gateway.call(basic, method, path, body)
        assert status == 403, (path, feature, payload)
        assert payload["error"]["code"] == "feature_not_in_tier"
        assert payload["error"]["message"] == f"The basic tier does not include {feature}"
        assert headers["x-inferlab-tier"] == "basic"
    assert gateway.sim.requests_total == 0

    # the pro tier has code and planning
    status, body, _ = await gateway.call(pro, "POST", "/v1/completions",
                                         {"model": "sim-model", "prompt": "def f(", "suffix": "\n", "max_tokens": 4})
    assert status == 200 and gateway.sim.last_request is not None and gateway.sim.last_request["suffix"] == "\n"
    assert (await gateway.call(pro, "GET", "/v1/planning/catalogue"))[0] == 200


async def test_caps_are_refused_on_a_refusing_tier(gateway: Gateway) -> None:
    gateway.sim.script = SimulatorScript(completion_tokens=200)
    await gateway.tenant("basic-co", "basic")  # max_tokens 50, context 300 tokens
    basic = await gateway.key("basic-co")
    over = [
        (chat(max_tokens=51), "max_tokens_over_tier_cap", "max_tokens"),
        (chat(max_completion_tokens=60), "max_tokens_over_tier_cap", "max_completion_tokens"),
        (chat(max_tokens=30, n=2), "max_tokens_over_tier_cap", "max_tokens"),  # 60 > 50 in all
        (chat(messages=[{"role": "user", "content": "x" * 1200}], max_tokens=10), "context_over_tier_cap", "messages"),
        (chat(messages=[{"role": "user", "content": "x" * 1100}], max_tokens=50), "max_tokens_over_tier_cap",
         "max_tokens"),  # ~276 prompt tokens: 24 left of the context
    ]
    for body, code, param in over:
        status, payload, headers = await gateway.call(basic, "POST", "/v1/chat/completions", body)
        assert status == 400, (body, payload)
        assert (payload["error"]["code"], payload["error"]["param"]) == (code, param)
        assert "basic tier" in payload["error"]["message"] and headers["x-inferlab-tier"] == "basic"
    assert gateway.sim.requests_total == 0

    status, body, _ = await gateway.call(basic, "POST", "/v1/chat/completions", chat(max_tokens=50))
    assert status == 200 and gateway.sim.last_request is not None and gateway.sim.last_request["max_tokens"] == 50
    status, body, _ = await gateway.call(basic, "POST", "/v1/chat/completions", chat())  # no max_tokens: the cap
    assert status == 200 and gateway.sim.last_request["max_tokens"] == 50
    assert body["usage"]["completion_tokens"] == 50


async def test_caps_are_clamped_on_a_clamping_tier(gateway: Gateway) -> None:
    gateway.sim.script = SimulatorScript(completion_tokens=200)
    await gateway.tenant("squeeze-co", "squeeze")  # max_tokens 20, context 100 tokens, clamp
    squeeze = await gateway.key("squeeze-co")
    status, body, headers = await gateway.call(squeeze, "POST", "/v1/chat/completions", chat(max_tokens=500))
    assert status == 200 and headers["x-inferlab-tier"] == "squeeze"
    assert gateway.sim.last_request is not None and gateway.sim.last_request["max_tokens"] == 20
    assert body["usage"]["completion_tokens"] == 20
    status, body, _ = await gateway.call(squeeze, "POST", "/v1/completions",
                                         {"model": "pro-model", "prompt": "y" * 320, "max_completion_tokens": 90})
    assert status == 200  # a prompt of ~81 tokens leaves 19 of the 100
    assert gateway.sim.last_request["max_completion_tokens"] == 19 and body["usage"]["completion_tokens"] == 19
    status, body, _ = await gateway.call(squeeze, "POST", "/v1/chat/completions",
                                         chat(messages=[{"role": "user", "content": "z" * 500}]))
    assert status == 400 and body["error"]["code"] == "context_over_tier_cap"  # the prompt alone: never clamped
    status, body, _ = await gateway.call(squeeze, "POST", "/v1/embeddings", {"model": "sim-model", "input": "hi"})
    assert status == 403 and body["error"]["code"] == "feature_not_in_tier"


async def test_the_tier_header_is_on_admin_routes_and_their_errors(gateway: Gateway) -> None:
    await gateway.tenant("basic-co", "basic")
    admin = await gateway.key("basic-co", role="tenant-admin", groups=("inference", "admin"))
    for method, path, body, expected in [
        ("GET", "/admin/keys", None, 200),
        ("GET", "/admin/tiers/basic", None, 200),
        ("GET", "/admin/tenants/basic-co", None, 200),
        ("GET", "/admin/keys/aaaaaaaaaaaa", None, 404),
        ("GET", "/admin/tenants/default", None, 404),  # another tenant: as if missing
        ("POST", "/admin/keys", {"name": "x", "bogus": 1}, 400),
        ("PATCH", "/admin/tenants/basic-co", {"tier": "enterprise"}, 403),  # platform admins only
        ("GET", "/v1/nope", None, 404),
    ]:
        status, _, headers = await gateway.call(admin, method, path, body)
        assert status == expected, (method, path)
        assert headers.get("x-inferlab-tier") == "basic", (method, path)
    health = await gateway.client.get("/health", headers=h(admin))
    assert health.status == 200 and "x-inferlab-tier" not in health.headers  # public: no caller, no tier


async def test_the_tiers_limits_apply_and_a_stored_limit_wins(gateway: Gateway) -> None:
    await gateway.tenant("metered-co", "metered")  # rpm 2 for the whole tenant
    first, second = await gateway.key("metered-co"), await gateway.key("metered-co")
    assert (await gateway.call(first, "POST", "/v1/chat/completions", chat()))[0] == 200
    assert (await gateway.call(second, "POST", "/v1/chat/completions", chat()))[0] == 200
    status, payload, headers = await gateway.call(first, "POST", "/v1/chat/completions", chat())
    assert status == 429 and payload["error"]["type"] == "rate_limit_error"
    assert "retry-after" in {name.lower() for name in headers}
    assert headers["x-inferlab-tier"] == "metered"
    assert (await gateway.call(second, "POST", "/v1/chat/completions", chat()))[0] == 429  # tenant-wide

    await gateway.tenant("metered-b", "metered")
    status, _, _ = await gateway.call(gateway.root, "PUT", "/admin/limits/tenant/metered-b", {"rpm": 3})
    assert status == 200
    key = await gateway.key("metered-b")
    assert [(await gateway.call(key, "POST", "/v1/chat/completions", chat()))[0] for _ in range(4)] == [
        200, 200, 200, 429]

    await gateway.tenant("unmetered-co", "metered", tenant_limits={"rpm": None})  # its own override: unlimited
    key = await gateway.key("unmetered-co")
    assert {(await gateway.call(key, "POST", "/v1/chat/completions", chat()))[0] for _ in range(4)} == {200}
