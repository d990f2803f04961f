"""The shipped catalogue: sourced figures, user overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab import planning
from inferlab.errors import InvalidRequest
from inferlab.planning import Catalogue, load_catalogue, resolve_deployment


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def test_exported_names_exist() -> None:
    for name in planning.__all__:
        assert hasattr(planning, name), name


def test_catalogue_covers_the_required_hardware(catalogue: Catalogue) -> None:
    for acc_id in ("rtx-3060-12gb", "rtx-4090", "rtx-a4000", "a100-80gb-sxm", "h100-sxm", "mi300x",
                   "apple-m1", "apple-m2-ultra", "tpu-v5e", "tpu-v6e", "cpu-ddr4-3200"):
        catalogue.accelerator(acc_id)
    assert catalogue.accelerator("tpu-v6e").rental("on_demand").usd_per_hour == 2.70  # type: ignore[union-attr]


def test_every_figure_has_a_source_and_a_date(catalogue: Catalogue) -> None:
    for acc in catalogue.accelerators.values():
        figures = ["bandwidth_gbps", "memory_gb", *(f"tflops.{k}" for k in acc.tflops)]
        for figure in figures:
            ref = acc.source_of(figure)
            assert ref.source and ref.date, (acc.id, figure)
        for price in acc.rentals:
            assert price.ref.source and price.ref.date, (acc.id, price)
        if acc.purchase:
            assert acc.purchase.ref.source and acc.purchase.ref.date
    for model in catalogue.models.values():
        assert model.ref.source and model.ref.date, model.id
    for fmt in catalogue.weight_formats.values():
        assert fmt.ref.source and fmt.ref.date
    for sourced in (*catalogue.defaults.values(), *catalogue.economics.values()):
        assert sourced.ref.source and sourced.ref.date


def test_unknown_gpu_names_the_valid_choices(catalogue: Catalogue) -> None:
    with pytest.raises(InvalidRequest) as info:
        catalogue.accelerator("rtx-9090")
    assert info.value.param == "gpu"
    assert "rtx-9090" in info.value.message and "rtx-4090" in info.value.message and "h100-sxm" in info.value.message


def test_unknown_quant_names_the_valid_choices(catalogue: Catalogue) -> None:
    with pytest.raises(InvalidRequest) as info:
        resolve_deployment(catalogue, model="llama-3.1-8b", gpu="rtx-4090", quant="Q9_K_XL")
    assert info.value.param == "quant"
    assert "Q4_K_M" in info.value.message and "fp8" in info.value.message


def test_unknown_model_kv_dtype_and_engine(catalogue: Catalogue) -> None:
    with pytest.raises(InvalidRequest, match=r"llama-3\.1-8b"):
        catalogue.model("llama-9")
    with pytest.raises(InvalidRequest, match="q8_0") as info:
        resolve_deployment(catalogue, model="llama-3.1-8b", gpu="rtx-4090", kv_dtype="q3")
    assert info.value.param == "kv_dtype"
    with pytest.raises(InvalidRequest, match="vllm") as info:
        resolve_deployment(catalogue, model="llama-3.1-8b", gpu="rtx-4090", engine="magic")
    assert info.value.param == "engine"


def test_quant_names_are_case_insensitive_with_aliases(catalogue: Catalogue) -> None:
    assert catalogue.weight_format("q4_k_m").name == "Q4_K_M"
    assert catalogue.weight_format("AWQ").name == "int4"
    assert catalogue.kv_dtype("fp16").name == "f16"


def test_user_yaml_overrides_and_extends(tmp_path: Path) -> None:
    extra = tmp_path / "mine.yaml"
    extra.write_text(
        """
accelerators:
  - id: rtx-4090
    purchase: {usd: 1200, basis: used, source: "my receipt", date: "2026-10"}
  - id: my-gpu
    name: Home-built accelerator
    kind: gpu
    memory_gb: 20
    bandwidth_gbps: 500
models:
  - {id: tiny, layers: 2, hidden: 64, heads: 4, kv_heads: 2, params_b: 0.001, max_context: 1024}
""",
        encoding="utf-8",
    )
    catalogue = load_catalogue([extra])
    assert catalogue.accelerator("rtx-4090").purchase.usd == 1200  # type: ignore[union-attr]
    assert catalogue.accelerator("rtx-4090").bandwidth_gbps == 1008  # untouched fields survive
    mine = catalogue.accelerator("my-gpu")
    assert mine.source_of("bandwidth_gbps").source == f"user file {extra}"
    assert catalogue.model("tiny").head_dim == 16
    assert "h100-sxm" in catalogue.accelerators


def test_bad_user_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InvalidRequest, match="cannot read"):
        load_catalogue([missing])
    broken = tmp_path / "broken.yaml"
    broken.write_text("accelerators:\n  - {id: x, bandwidth_gbps: -1, memory_gb: 8}\n", encoding="utf-8")
    with pytest.raises(InvalidRequest, match="positive"):
        load_catalogue([broken])
