"""Model management end to end with the real llama-server: the embedded SmolLM2 pushed to a real OCI
registry in Ollama's layout, pulled into the store and served; a tiny Hugging Face Llama checkpoint
(safetensors) converted to GGUF by ``inferlab models convert`` and served."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
import openai
import pytest

from inferlab.config import EngineSettings
from inferlab.modelstore import ModelStore
from inferlab.modelstore.oci import pull_oci
from inferlab.testing.convert_env import ensure_convert_python, make_tiny_llama
from inferlab.testing.gateway_process import llama_server
from inferlab.testing.needs import require
from inferlab.testing.oci_registry import RegistryProcess, push_model, registry_binary

pytestmark = pytest.mark.engine


def _complete(binary: Path, model: Path, prompt: str) -> tuple[str, int]:
    """llama-server on ``model``; one completion through the openai SDK: (text, completion tokens)."""
    with llama_server(binary, model, ctx_size=256, parallel=1) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", timeout=60)
        answer = client.completions.create(model="pulled", prompt=prompt, max_tokens=8, temperature=0)
    assert answer.usage is not None
    return answer.choices[0].text, answer.usage.completion_tokens


async def test_pull_from_a_registry_then_serve(llama_server_path: Path, smollm2_gguf: Path, tmp_path: Path) -> None:
    binary = registry_binary()
    require(binary is not None, "docker-registry is not installed (./dev setup test extracts Debian's package)")
    assert binary is not None
    registry = await RegistryProcess(tmp_path / "registry").start(binary)
    try:
        async with aiohttp.ClientSession() as session:
            pushed = await push_model(session, registry.url, "library/smollm2", "135m", smollm2_gguf)
        store = ModelStore(tmp_path / "store")
        manifest = await pull_oci(store, f"{registry.host}/library/smollm2:135m", "smollm2:135m")
    finally:
        await registry.close()
    assert manifest.model.digest == pushed.model_digest
    text, tokens = await asyncio.to_thread(_complete, llama_server_path, store.model_path("smollm2:135m"),
                                           "The capital of France is")
    assert tokens > 0 and text.strip()


@pytest.fixture(scope="module")
def convert_python() -> Path:
    try:
        return ensure_convert_python(EngineSettings().cache_dir)
    except (RuntimeError, OSError) as exc:
        require(False, f"no Python with torch for the converter: {exc}")
        raise


async def test_convert_safetensors_then_serve(llama_server_path: Path, convert_python: Path, tmp_path: Path) -> None:
    checkpoint = await asyncio.to_thread(make_tiny_llama, convert_python, tmp_path / "tiny-llama")
    config = tmp_path / "inferlab.yaml"
    config.write_text(json.dumps({"registry": {"convert_python": str(convert_python)}}))  # JSON is YAML
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inferlab", "models", "convert", str(checkpoint), "tiny:f16", "--outtype", "f16",
        "--config", str(config), "--data-dir", str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    row = json.loads(out)
    assert row["name"] == "tiny" and row["tag"] == "f16"
    assert row["annotations"] == {"converted": "f16"} and row["source"] == str(checkpoint)

    import gguf

    reader = gguf.GGUFReader(row["path"])
    assert reader.fields["general.architecture"].contents() == "llama"
    assert reader.fields["llama.block_count"].contents() == 2
    assert reader.fields["llama.embedding_length"].contents() == 64
    text, tokens = await asyncio.to_thread(_complete, llama_server_path, Path(row["path"]), "the model")
    assert tokens > 0 and isinstance(text, str)
