"""Metrics count every response with bounded labels; access-log lines say who, what it cost, where
it went and whether the cache answered; prompts reach the log only when ``logging.log_prompts``."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.config import Settings
from inferlab.testing import EngineSimulator, SimulatorScript

MODEL = "sim-model"
PEPPER = "pepper-observability-0123456789"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def named(self, name: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name == name]

    def text(self) -> str:
        return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in self.records)


@pytest.fixture
def logs() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("inferlab")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.fixture
async def sim() -> AsyncIterator[EngineSimulator]:
    simulator = EngineSimulator(SimulatorScript(completion_tokens=4), model=MODEL)
    await simulator.start()
    yield simulator
    await simulator.stop()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def started(settings: Settings) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = TestClient(TestServer(await create_app(settings)))
    await client.start_server()
    return client


async def member_key(client: TestClient[Any, Any]) -> str:
    admin = client.app[SERVICES].auth.admin  # type: ignore[union-attr]
    user = await admin.create_user(LOCAL_OPERATOR, f"u{uuid.uuid4().hex[:8]}", "member", "default")
    scopes = Scopes(frozenset({"inference"}))
    created = await admin.create_key(LOCAL_OPERATOR, name="t", user_id=user.id, scopes=scopes)
    return str(created.token)


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 4, **extra}


def request_counts(text: str) -> dict[tuple[str, str, str], float]:
    counts: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "inferlab_requests":
            for sample in family.samples:
                if sample.name == "inferlab_requests_total":
                    labels = sample.labels
                    counts[(labels["model"], labels["route"], labels["status"])] = sample.value
    return counts


async def test_metrics_count_every_refusal_with_bounded_labels(sim: EngineSimulator, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, features={"auth": True, "ratelimit": True},
        auth={"pepper": PEPPER, "bootstrap": False}, server={"max_body_bytes": 2048},
        ratelimit={"limits": [{"scope": "key", "rpm": 2}]},
        models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}],
    )
    client = await started(settings)
    try:
        key = {"Authorization": f"Bearer {await member_key(client)}"}
        bogus = f"bogus-{uuid.uuid4().hex}"
        assert (await client.post("/v1/chat/completions", json=chat())).status == 401
        assert (await client.get(f"/no/such/{bogus}")).status == 401
        assert (await client.post("/v1/chat/completions", json=chat(model=bogus), headers=key)).status == 404
        assert (await client.post("/v1/chat/completions", data=b"{nope", headers=key)).status == 400
        assert (await client.get(f"/no/such/{bogus}", headers=key)).status == 404
        assert (await client.get("/admin/users", headers=key)).status == 403
        big = chat(messages=[{"role": "user", "content": "x" * 4096}])
        assert (await client.post("/v1/chat/completions", json=big, headers=key)).status == 413
        assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 200
        assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 200
        assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 429
        text = await (await client.get("/metrics")).text()
    finally:
        await client.close()
    counts = request_counts(text)
    chat_route = "/v1/chat/completions"
    assert counts == {
        ("unknown", chat_route, "401"): 1, ("unknown", "other", "401"): 1,
        ("unknown", chat_route, "404"): 1, ("unknown", chat_route, "400"): 1, ("unknown", "other", "404"): 1,
        ("unknown", "/admin/users", "403"): 1, ("unknown", chat_route, "413"): 1,
        (MODEL, chat_route, "200"): 2, (MODEL, chat_route, "429"): 1,
    }
    assert bogus not in text


async def test_access_log_carries_identity_tokens_cache_and_route(
    sim: EngineSimulator, tmp_path: Path, logs: Records
) -> None:
    settings = Settings(
        data_dir=tmp_path, features={"auth": True, "cache": True},
        auth={"pepper": PEPPER, "bootstrap": False},
        models=[{"name": MODEL, "backend": "openai", "urls": [f"{sim.base_url}/v1", closed_port_url()],
                 "routing": {"strategy": "round_robin"}, "health": {"probe_interval_s": 600}}],
    )
    client = await started(settings)
    try:
        token = await member_key(client)
        key = {"Authorization": f"Bearer {token}"}
        principal = await client.app[SERVICES].auth.service.authenticate(token)  # type: ignore[union-attr]
        outcomes = []
        for body in (chat(temperature=0), chat(temperature=0), chat(temperature=0.7)):
            response = await client.post("/v1/chat/completions", json=body, headers=key)
            assert response.status == 200
            outcomes.append(response.headers.get("x-inferlab-cache"))
            await response.read()
    finally:
        await client.close()
    assert outcomes == ["miss", "hit", "bypass"]
    lines = [r.__dict__ for r in logs.named("inferlab.access") if r.__dict__["path"].startswith("/v1/chat")]
    assert [line["cache"] for line in lines] == ["miss", "hit", "bypass"]
    for line in lines:
        who = (line["key_id"], line["user"], line["tenant"])
        assert who == (principal.key_id, principal.user_id, "default")
    first, hit, bypass = lines
    # round robin sends the first request to the dead replica (-1): it fails over to -0
    assert (first["replica"], first["failovers"]) == (f"{MODEL}-0", 1)
    assert first["prompt_tokens"] > 0 and first["completion_tokens"] == 4
    assert "replica" not in hit and (hit["prompt_tokens"], hit["completion_tokens"]) == (0, 0)
    assert (bypass["replica"], bypass["failovers"]) == (f"{MODEL}-0", 0)
    assert token not in logs.text() and token.split("-", 2)[2] not in logs.text()


async def test_prompts_are_logged_only_when_configured(
    sim: EngineSimulator, tmp_path: Path, logs: Records
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    body = chat(messages=[{"role": "user", "content": canary + " " + "y" * 5000}])
    for log_prompts in (False, True):
        settings = Settings(
            data_dir=tmp_path, logging={"log_prompts": log_prompts, "prompt_max_chars": 300},
            models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}],
        )
        client = await started(settings)
        try:
            response = await client.post("/v1/chat/completions", json=body)
            assert response.status == 200
            request_id = response.headers["x-request-id"]
        finally:
            await client.close()
        if not log_prompts:
            assert canary not in logs.text() and not logs.named("inferlab.prompts")
    warnings = [r for r in logs.records if r.levelno == logging.WARNING and "log_prompts" in r.getMessage()]
    assert len(warnings) == 1
    (prompt,) = logs.named("inferlab.prompts")
    fields = prompt.__dict__
    assert fields["request_id"] == request_id and fields["model"] == MODEL
    assert canary in fields["prompt"] and len(fields["prompt"]) <= 300 and fields["prompt_chars"] > 5000
