"""Traffic that makes a gateway's ``/metrics`` show the series the Grafana dashboards query: two
tenants with their own keys, streamed and unstreamed chats, completions, a cached answer, refused
requests (a rate limit), an unknown model, and concurrent streams that queue for the replica's two
slots, through the official openai SDK; admin calls through the InferLab SDK."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
from inferlab_client import InferLab

from inferlab.testing import EngineSimulator

MESSAGES: Any = [{"role": "user", "content": "hello there"}]
PEPPER = "grafana-pepper-0123456789abcdef"


def gateway_config(sim: EngineSimulator) -> dict[str, Any]:
    assert sim.base_url is not None
    return {
        "features": {"auth": True, "ratelimit": True, "resources": True, "cache": True},
        "auth": {"pepper": PEPPER, "bootstrap": True},
        "pricing": {"models": {"sim-model": {"input_per_million": "1", "output_per_million": "3"}}},
        "resources": {"pools": {"sim-model": {"sequences": 8, "kv_tokens": 16384}}, "refresh_s": 0.1},
        "models": [{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1",
                    "max_concurrency_per_replica": 2}],
    }


def drive(url: str, root: str) -> None:
    """Blocking (run it in a thread while the simulator serves on the event loop)."""
    with InferLab(url, root) as admin:
        tokens = {}
        for tenant in ("acme", "globex"):
            admin.admin.create_tenant({"id": tenant, "name": tenant.title()})
            user = admin.admin.create_user({"name": f"{tenant}-dev", "tenant_id": tenant})
            key = admin.admin.create_key({"name": "app", "user_id": user["id"]})
            tokens[tenant] = (key["id"], key["key"])
        admin.admin.set_limit("key", tokens["globex"][0], {"rpm": 2})
    for _, token in tokens.values():
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0)
        for _ in range(2):
            try:
                client.chat.completions.create(model="sim-model", messages=MESSAGES, max_tokens=8)
                for _chunk in client.chat.completions.create(model="sim-model", messages=MESSAGES, max_tokens=8,
                                                             stream=True):
                    pass
                client.completions.create(model="sim-model", prompt="once upon", max_tokens=4)
                client.chat.completions.create(model="sim-model", messages=MESSAGES, max_tokens=4, temperature=0,
                                               seed=1)  # deterministic: a cache lookup
            except openai.RateLimitError:
                pass  # globex's limit: inferlab_ratelimit_rejections_total, inferlab_tenant_requests_refused_total
        with contextlib.suppress(openai.NotFoundError):  # a 404 in inferlab_requests_total
            client.chat.completions.create(model="no-such-model", messages=MESSAGES)
        client.close()
    streams(url, tokens["acme"][1], 6)


def streams(url: str, token: str, count: int) -> None:
    """``count`` streams at once: more than the replica's slots, so some wait in the queue."""
    def one(_: int) -> int:
        with openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0) as client:
            return len(list(client.chat.completions.create(model="sim-model", messages=MESSAGES, stream=True)))

    with ThreadPoolExecutor(count) as pool:
        assert all(list(pool.map(one, range(count))))
