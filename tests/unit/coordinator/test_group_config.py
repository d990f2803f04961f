"""`distributed:` on a model: what it accepts, what it refuses, and the spec it becomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab.config import ConfigError, EngineSettings, ModelConfig, Settings
from inferlab.coordinator.from_config import deployment_from_model
from inferlab.coordinator.locate import built_llama_tool
from inferlab.preflight import preflight


def test_only_models_inferlab_runs_may_be_groups() -> None:
    with pytest.raises(ValueError, match="'distributed' is for llamacpp models"):
        ModelConfig(name="m", backend="openai", url="http://127.0.0.1:1/v1", distributed={"rpc_workers": 1})
    with pytest.raises(ValueError, match="rpc_workers"):
        ModelConfig(name="m", backend="llamacpp", path="embedded:smollm2", distributed={"rpc_workers": -1})


def test_a_grouped_model_becomes_a_deployment_spec(smollm2_gguf: Path) -> None:
    model = ModelConfig(name="m", backend="llamacpp", path="embedded:smollm2", replicas=2, parallel=3,
                        context_size=1024, distributed={"provider": "ray", "rpc_workers": 2, "placement": "pack"})
    spec = deployment_from_model(model, EngineSettings(threads=2))
    assert (spec.engine, spec.replicas, spec.ranks, spec.max_sequences, spec.context) == ("llama.cpp", 2, 3, 3, 1024)
    assert spec.placement == "pack" and spec.threads == 2 and spec.model == str(smollm2_gguf)


def test_serve_refuses_a_group_without_the_rpc_build(tmp_path: Path, smollm2_gguf: Path) -> None:
    settings = Settings(models=[{"name": "m", "backend": "llamacpp", "path": "embedded:smollm2",
                                 "distributed": {"rpc_workers": 1}}], engines={"cache_dir": tmp_path})
    assert not built_llama_tool(tmp_path, "rpc-server", variant="rpc").exists()
    with pytest.raises(ConfigError, match="inferlab engines build --tool rpc-server"):
        preflight(settings)
