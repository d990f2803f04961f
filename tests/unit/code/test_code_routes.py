"""/v1/code/completions and /v1/code/events through the in-process gateway and the engine
simulator: the same chain as every completion (templates, limits), one cleaned suggestion with
an id, and telemetry counted per model and language."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from inferlab.app import SERVICES, create_app
from inferlab.config import load_settings
from inferlab.testing import EngineSimulator

MODEL = "sim-model"
EDIT = {"language": "python", "filepath": "pkg/main.py", "prefix": "def add(a, b):\n    return ",
        "suffix": "\n\nprint(add(1, 2))\n", "git_url": "file:///srv/repos/demo.git",
        "declarations": [{"filepath": "pkg/util.py", "body": "def helper(x):\n    return x"}]}


@pytest.fixture
async def server(sim: EngineSimulator) -> AsyncIterator[TestServer]:
    settings = load_settings(overrides={
        "features": {"ratelimit": True},
        "ratelimit": {"limits": [{"scope": "key", "rpm": 3}]},
        "models": [{"name": MODEL, "backend": "openai", "url": sim.base_url + "/v1", "fim_template": "qwen2.5-coder"}],
    })
    server = TestServer(await create_app(settings))
    await server.start_server()
    yield server
    await server.close()


async def post(server: TestServer, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(server.make_url(path), json=body) as response:
        return response.status, await response.json()


async def test_a_completion_is_a_fim_completion_with_context_and_an_id(server: TestServer, sim: EngineSimulator) -> None:
    status, body = await post(server, "/v1/code/completions", EDIT)
    assert status == 200, body
    assert body["completion_id"].startswith("code-") and body["model"] == MODEL
    assert len(body["choices"]) == 1 and isinstance(body["choices"][0]["text"], str)
    sent = sim.last_request
    assert sent is not None and "suffix" not in sent
    assert sent["prompt"] == ("<|repo_name|>demo\n<|file_sep|>pkg/util.py\ndef helper(x):\n    return x\n"
                              "<|file_sep|>pkg/main.py\n<|fim_prefix|>def add(a, b):\n    return "
                              "<|fim_suffix|>\n\nprint(add(1, 2))\n<|fim_middle|>")
    assert "<|file_sep|>" in sent["stop"] and "\ndef " in sent["stop"]
    assert body["usage"]["completion_tokens"] > 0


async def test_events_feed_acceptance_per_model_and_language(server: TestServer) -> None:
    ids = [(await post(server, "/v1/code/completions", EDIT))[1]["completion_id"] for _ in range(2)]
    status, answer = await post(server, "/v1/code/events", {"type": "select", "completion_id": ids[0]})
    assert status == 200 and answer["acceptance_rate"] == 1.0
    status, answer = await post(server, "/v1/code/events", {"type": "dismiss", "completion_id": ids[1]})
    assert answer["acceptance_rate"] == 0.5
    await post(server, "/v1/code/events", {"type": "accept", "completion_id": ids[1]})  # decided already: not counted
    telemetry = server.app[SERVICES].code.telemetry  # type: ignore[union-attr]
    tally = telemetry.tally(MODEL, "python")
    assert (tally.issued, tally.accept, tally.reject) == (2, 1, 1)
    metrics = server.app[SERVICES].metrics
    assert metrics is not None
    assert metrics.code_events.labels(MODEL, "python", "accept")._value.get() == 1
    assert (await post(server, "/v1/code/events", {"type": "select", "completion_id": "code-nope"}))[0] == 404
    assert (await post(server, "/v1/code/events", {"type": "frown", "completion_id": ids[0]}))[0] == 400


async def test_code_completions_obey_the_rate_limits_of_the_completions_route(server: TestServer) -> None:
    statuses = [(await post(server, "/v1/code/completions", EDIT))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize(("body", "param"), [
    ({"prefix": "x"}, "language"),
    ({"language": "python"}, "prefix"),
    ({**EDIT, "max_tokens": 0}, "max_tokens"),
    ({**EDIT, "declarations": [{"filepath": 1}]}, "declarations[0]"),
    ({**EDIT, "model": "nope"}, "model"),
    ({**EDIT, "tier": "large"}, "tier"),
])
async def test_bad_input_is_an_openai_error_not_a_500(server: TestServer, body: dict[str, Any], param: str) -> None:
    status, answer = await post(server, "/v1/code/completions", body)
    assert status in (400, 404) and answer["error"]["param"] == param
