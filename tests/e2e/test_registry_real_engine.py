"""The embedded GGUF requantised with llama-quantize, registered as a version through the admin
API (its llama-server started by hot reload, no restart), and served side by side with the
configured model — by alias and by a sticky 50/50 experiment — through the official SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import openai
import pytest

from inferlab.config import EngineSettings
from inferlab.modelstore import ModelStore
from inferlab.modelstore.quantize import quantize
from inferlab.testing.gateway_process import GatewayProcess
from inferlab.testing.needs import require

pytestmark = pytest.mark.engine
MODEL = "smollm2-135m"
HELLO = [{"role": "user", "content": "Say hello in one word."}]


@pytest.fixture(scope="module")
def llama_quantize() -> Path:
    """llama.cpp's llama-quantize, built once from the same sources as llama-server (then cached)."""
    from inferlab.coordinator.build import BuildError, build_llama_tool

    try:
        return build_llama_tool(EngineSettings().cache_dir, "llama-quantize", say=lambda _: None)
    except BuildError as exc:
        require(False, f"llama-quantize cannot be built: {exc}")
        raise


@pytest.fixture(scope="module")
def requantised(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path,
                llama_quantize: Path) -> tuple[ModelStore, str]:
    store = ModelStore(tmp_path_factory.mktemp("models"))
    from inferlab.modelstore.store import Manifest

    store.write_manifest(Manifest("smollm2", "q4_1", [store.ingest_file(smollm2_gguf)], source="embedded"))
    manifest = asyncio.run(quantize(store, "smollm2:q4_1", "Q4_0", "smollm2:q4_0", quantizer=llama_quantize))
    return store, manifest.model.digest


@pytest.fixture(scope="module")
def gateway(llama_server_path: Path, requantised: tuple[ModelStore, str]) -> Iterator[GatewayProcess]:
    config = {"models": [{"name": MODEL, "backend": "llamacpp", "path": "embedded:smollm2", "context_size": 1024,
                          "parallel": 2, "embeddings": False}],
              "features": {"registry": True}, "engines": {"prefer": "llama-server"},
              "registry": {"poll_interval_s": 0.2}, "logging": {"level": "INFO"}}
    process = GatewayProcess(config).start()
    yield process
    process.stop()


def test_requantised_version_served_beside_the_configured_one(gateway: GatewayProcess,
                                                              requantised: tuple[ModelStore, str]) -> None:
    store, digest = requantised
    with httpx.Client(base_url=gateway.url, timeout=120) as admin:
        _side_by_side(gateway, admin, store, digest)


def _side_by_side(gateway: GatewayProcess, admin: httpx.Client, store: ModelStore, digest: str) -> None:
    started_at = time.monotonic()
    spec = {"backend": "llamacpp", "path": str(store.blob_path(digest)), "context_size": 1024, "parallel": 2,
            "embeddings": False}
    created = admin.post(f"/admin/registry/models/{MODEL}/versions", json={"version": "q4_0", "spec": spec,
                                                                           "digest": digest})
    assert created.status_code == 201, created.text
    assert admin.put(f"/admin/registry/models/{MODEL}/aliases/canary", json={"version": "q4_0"}).status_code == 200
    configured = admin.get("/admin/registry").json()["models"][0]["aliases"]["stable"]
    print(f"version registered and its engine ready in {time.monotonic() - started_at:.1f}s")

    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=60) as sdk:
        seen = {}
        for model in (MODEL, f"{MODEL}@canary", f"{MODEL}@q4_0"):
            raw = sdk.chat.completions.with_raw_response.create(model=model, messages=HELLO, max_tokens=4)
            answer = raw.parse()
            assert answer.choices[0].message.content
            seen[model] = raw.headers["x-inferlab-model-version"]
        assert seen == {MODEL: configured, f"{MODEL}@canary": "q4_0", f"{MODEL}@q4_0": "q4_0"}
        print(f"three answers by {time.monotonic() - started_at:.1f}s")

        started = admin.post("/admin/registry/experiments", json={"model": MODEL, "candidate": "canary",
                                                                  "weight": 0.5, "unit": "user", "salt": "e2e"})
        assert started.status_code == 201, started.text
        def ask(user: str) -> tuple[str, str]:
            raw = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO, max_tokens=1, user=user)
            assert raw.parse().choices[0].message.content is not None
            return user, raw.headers["x-inferlab-model-version"]

        variants: dict[str, set[str]] = {}
        with ThreadPoolExecutor(4) as pool:  # two engines of two slots each
            for user, version in pool.map(ask, [f"user-{i}" for i in range(6)] * 2):  # each user twice
                variants.setdefault(user, set()).add(version)
        assert all(len(seen_by) == 1 for seen_by in variants.values())  # sticky
        assert set().union(*variants.values()) == {configured, "q4_0"}  # both versions served side by side
        experiment = started.json()["id"]
        print(f"twelve experiment answers by {time.monotonic() - started_at:.1f}s")
        shown = admin.get(f"/admin/registry/experiments/{experiment}").json()
        assert shown["state"] == "running"

        with pytest.raises(openai.NotFoundError):
            sdk.chat.completions.create(model=f"{MODEL}@nope", messages=HELLO, max_tokens=1)
    metrics = admin.get("/metrics").text
    assert "inferlab_variant_requests_total" in metrics

    engine = f"{MODEL}@q4_0"
    assert engine in gateway.ready_status()["engines"]  # the version's llama-server, started by hot reload
    assert admin.post(f"/admin/registry/experiments/{experiment}/decision", json={"action": "stop"}).status_code == 200
    assert admin.delete(f"/admin/registry/models/{MODEL}/aliases/canary").status_code == 200
    assert admin.delete(f"/admin/registry/models/{MODEL}/versions/q4_0").status_code == 200
    deadline = time.monotonic() + 30
    while engine in gateway.ready_status()["engines"]:  # drained, then its engine stopped
        assert time.monotonic() < deadline, gateway.ready_status()
        time.sleep(0.2)
