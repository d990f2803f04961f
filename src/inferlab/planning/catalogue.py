"""The planning catalogue: the collection of specs, its lookups, and how it is loaded.

:func:`load_catalogue` reads the shipped ``data/catalogue.yaml`` and then each user file in turn;
nothing is read at import time. User files have the shipped shape; an entry whose ``id`` (or
``name`` for formats) already exists is merged field by field over the shipped one, so overriding
a price is three lines. Figures in a user file without a ``source`` are attributed to that file.
Lookups raise :class:`~inferlab.errors.InvalidRequest` naming the valid choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from inferlab.errors import InvalidRequest
from inferlab.planning.specs import (
    Accelerator,
    ApiPrice,
    BillingTerms,
    Interconnect,
    KVDtype,
    ModelSpec,
    PurchasePrice,
    RentalPrice,
    Sourced,
    SourceRef,
    WeightFormat,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Catalogue:
    accelerators: Mapping[str, Accelerator]
    models: Mapping[str, ModelSpec]
    weight_formats: Mapping[str, WeightFormat]  # keyed by lower-case name and aliases
    kv_dtypes: Mapping[str, KVDtype]
    defaults: Mapping[str, Sourced]  # flat keys, e.g. "decode_bandwidth_efficiency.llama_cpp.cpu"
    economics: Mapping[str, Sourced]  # flat keys, e.g. "pue.datacenter"
    api_prices: tuple[ApiPrice, ...] = ()
    billing: Mapping[str, BillingTerms] = field(default_factory=dict)  # "provider" or "provider/tier"
    interconnects: Mapping[str, Interconnect] = field(default_factory=dict)

    def accelerator(self, accelerator_id: str) -> Accelerator:
        return _lookup(self.accelerators, accelerator_id, "GPU/accelerator", "gpu")

    def model(self, model_id: str) -> ModelSpec:
        return _lookup(self.models, model_id, "model", "model")

    def weight_format(self, name: str) -> WeightFormat:
        return _lookup(self.weight_formats, name, "quantization / weight format", "quant")

    def kv_dtype(self, name: str) -> KVDtype:
        return _lookup(self.kv_dtypes, name, "KV cache type", "kv_dtype")

    def default(self, key: str) -> float:
        return self.defaults[key].value

    def economic(self, key: str) -> float:
        return self.economics[key].value

    def billing_for(self, price: RentalPrice | None) -> BillingTerms:
        """The billing terms of a rental price: its provider and tier, its provider, else the default."""
        keys = [f"{price.provider}/{price.tier}", price.provider] if price is not None else []
        for key in [*keys, "default"]:
            if key in self.billing:
                return self.billing[key]
        return BillingTerms(SourceRef("assumed: whole hours (no billing terms in the catalogue)", "2026-11", "E"))

    def interconnect(self, interconnect_id: str) -> Interconnect:
        return _lookup(self.interconnects, interconnect_id, "interconnect", "interconnect")

    def with_model(self, model: ModelSpec) -> Catalogue:
        return replace(self, models={**self.models, model.id: model})


def _lookup(table: Mapping[str, T], key: str, what: str, param: str) -> T:
    found = table.get(key) or table.get(key.lower())
    if found is None:
        names = sorted({str(getattr(v, "id", None) or getattr(v, "name", "")) for v in table.values()})
        raise InvalidRequest(
            f"unknown {what} {key!r}; valid choices: {', '.join(names)}",
            param=param,
            code="unknown_" + param,
        )
    return found


_LISTS = ("accelerators", "models", "kv_dtypes", "interconnects")
_ACCELERATOR_FIGURES = ("memory_gb", "memory_gb_options", "usable_mib", "usable_fraction", "bandwidth_gbps", "tdp_w")


def shipped_catalogue_text() -> str:
    return resources.files("inferlab.planning").joinpath("data/catalogue.yaml").read_text(encoding="utf-8")


def load_catalogue(extra_paths: Iterable[str | Path] = ()) -> Catalogue:
    """The shipped catalogue, extended/overridden by each YAML file in ``extra_paths`` in turn."""
    raw = yaml.safe_load(shipped_catalogue_text())
    for path in extra_paths:
        raw = merge_raw(raw, _read_user_file(Path(path)))
    return build_catalogue(raw)


def _read_user_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise InvalidRequest(f"cannot read catalogue file {path}: {exc.strerror}", param="catalogue") from exc
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"catalogue file {path} is not valid YAML: {exc}", param="catalogue") from exc
    if not isinstance(data, dict):
        raise InvalidRequest(f"catalogue file {path} must hold a mapping at top level", param="catalogue")
    default_ref = {"source": f"user file {path}", "date": "user-supplied", "provenance": "E"}
    formats = data.get("weight_formats") or {}
    entry_lists = [data.get(key) or [] for key in _LISTS] + [formats.get(kind) or [] for kind in formats]
    for entries in entry_lists:
        for entry in entries:
            if isinstance(entry, dict):
                entry.setdefault("source", default_ref)
    return data


def merge_raw(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a user document over the shipped one (lists by ``id``/``name``, mappings deeply)."""
    merged = dict(base)
    for key, value in extra.items():
        if key in _LISTS and isinstance(value, list):
            merged[key] = _merge_list(list(base.get(key) or []), value)
        elif key == "weight_formats" and isinstance(value, dict):
            known = base.get(key) or {}
            merged[key] = {
                kind: _merge_list(list(known.get(kind) or []), list(value.get(kind) or []))
                for kind in {*known, *value}
            }
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = merge_raw(base[key], value)
        else:
            merged[key] = value
    return merged


def _merge_list(base: list[Any], extra: list[Any]) -> list[Any]:
    index = {_entry_key(e): i for i, e in enumerate(base)}
    out = list(base)
    for entry in extra:
        key = _entry_key(entry)
        if key in index:
            out[index[key]] = {**out[index[key]], **entry}
        else:
            index[key] = len(out)
            out.append(entry)
    return out


def _entry_key(entry: Any) -> str:
    if not isinstance(entry, dict) or not (entry.get("id") or entry.get("name")):
        raise InvalidRequest(f"catalogue entry needs an 'id' (or 'name'): {entry!r}", param="catalogue")
    return str(entry.get("id") or entry.get("name"))


def build_catalogue(raw: Mapping[str, Any]) -> Catalogue:
    try:
        links = {i.id: i for i in (_interconnect(e) for e in raw.get("interconnects") or [])}
        accelerators = {a.id: a for a in (_accelerator(e, links) for e in raw.get("accelerators") or [])}
        models = {m.id: m for m in (model_from_raw(e) for e in raw.get("models") or [])}
        formats: dict[str, WeightFormat] = {}
        for kind in ("dense", "gguf"):
            for entry in (raw.get("weight_formats") or {}).get(kind) or []:
                fmt = _weight_format(entry, kind)
                for alias in (fmt.name, *(entry.get("aliases") or [])):
                    formats[alias.lower()] = fmt
        kv: dict[str, KVDtype] = {}
        for entry in raw.get("kv_dtypes") or []:
            dtype = KVDtype(entry["name"], float(entry["bytes"]), _ref(entry["source"]))
            for alias in (dtype.name, *(entry.get("aliases") or [])):
                kv[alias.lower()] = dtype
        economics = raw.get("economics") or {}
        return Catalogue(
            accelerators=accelerators,
            models=models,
            weight_formats=formats,
            kv_dtypes=kv,
            defaults=_flatten_sourced(raw.get("defaults") or {}),
            economics=_flatten_sourced({k: v for k, v in economics.items() if k != "api_prices_usd_per_mtok"}),
            api_prices=tuple(_api_price(e) for e in economics.get("api_prices_usd_per_mtok") or []),
            billing={str(k): _billing(v) for k, v in (raw.get("billing") or {}).items()},
            interconnects=links,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRequest(f"invalid catalogue data: {exc!r}", param="catalogue") from exc


def _ref(raw: Mapping[str, Any]) -> SourceRef:
    return SourceRef(str(raw["source"]), str(raw["date"]), str(raw.get("provenance", "S")))


def _interconnect(e: Mapping[str, Any]) -> Interconnect:
    link = Interconnect(
        id=str(e["id"]),
        name=str(e.get("name", e["id"])),
        kind=e["kind"],
        bandwidth_gbps=float(e["bandwidth_gbps"]),
        latency_s=float(e["latency_us"]) / 1e6,
        ref=_ref(e["source"]),
    )
    if link.bandwidth_gbps <= 0 or link.latency_s < 0:
        raise ValueError(f"interconnect {link.id}: bandwidth_gbps must be positive and latency_us not negative")
    return link


def _accelerator(e: Mapping[str, Any], links: Mapping[str, Interconnect]) -> Accelerator:
    entry_ref = _ref(e["source"])
    sources: dict[str, SourceRef] = {"*": entry_ref}
    sources.update({name: entry_ref for name in _ACCELERATOR_FIGURES if e.get(name) is not None})
    sources.update({f"tflops.{k}": entry_ref for k in e.get("tflops") or {}})
    sources.update({k: _ref(v) for k, v in (e.get("figure_sources") or {}).items()})
    options = tuple(float(x) for x in e.get("memory_gb_options") or ())
    memory_gb = float(e.get("memory_gb") or (options[0] if options else 0))
    if memory_gb <= 0 or float(e["bandwidth_gbps"]) <= 0:
        raise ValueError(f"accelerator {e['id']}: memory_gb and bandwidth_gbps must be positive")
    return Accelerator(
        id=str(e["id"]),
        name=str(e.get("name", e["id"])),
        kind=e.get("kind", "gpu"),
        efficiency_class=str(e.get("efficiency_class", "consumer_nvidia")),
        bandwidth_gbps=float(e["bandwidth_gbps"]),
        memory_gb=memory_gb,
        memory_gb_options=options,
        usable_mib=float(e["usable_mib"]) if e.get("usable_mib") else None,
        usable_fraction=float(e.get("usable_fraction", 1.0)),
        tflops={str(k): float(v) for k, v in (e.get("tflops") or {}).items()},
        tdp_w=float(e["tdp_w"]) if e.get("tdp_w") else None,
        purchase=_purchase(e["purchase"]) if e.get("purchase") else None,
        rentals=tuple(_rental(r) for r in e.get("rental") or []),
        sources=sources,
        node8_purchase=_node_purchase(e["node_8gpu"]) if e.get("node_8gpu") else None,
        node8_max_kw=float(e["node_8gpu"]["max_kw"]) if (e.get("node_8gpu") or {}).get("max_kw") else None,
        interconnect=_link_of(e, links),
        node_devices=int(e.get("node_devices", 8)),
    )


def _link_of(e: Mapping[str, Any], links: Mapping[str, Interconnect]) -> Interconnect | None:
    name = e.get("interconnect")
    if not name:
        return None
    if str(name) not in links:
        raise ValueError(f"accelerator {e['id']}: unknown interconnect {name!r}; valid: {', '.join(sorted(links))}")
    return links[str(name)]


def _node_purchase(n: Mapping[str, Any]) -> PurchasePrice:
    return _purchase({"usd_range": n["capex_usd_range"], "basis": "8-GPU server", **n})


def _purchase(p: Mapping[str, Any]) -> PurchasePrice:
    raw_range = p.get("usd_range")
    rng = (float(raw_range[0]), float(raw_range[1])) if raw_range else None
    if "usd" in p:
        usd = float(p["usd"])
    elif rng is not None:
        usd = (rng[0] + rng[1]) / 2
    else:
        raise ValueError(f"purchase price needs usd or usd_range: {dict(p)!r}")
    return PurchasePrice(usd=usd, usd_range=rng, basis=str(p.get("basis", "")), ref=_ref(p))


def _rental(r: Mapping[str, Any]) -> RentalPrice:
    if "usd_per_hr" in r:
        hourly = float(r["usd_per_hr"])
    elif "usd_per_chip_hr" in r:
        hourly = float(r["usd_per_chip_hr"])
    elif "usd_per_hr_range" in r:
        hourly = sum(float(x) for x in r["usd_per_hr_range"]) / 2
    else:
        hourly = float(r["usd_per_sec"]) * 3600
    return RentalPrice(provider=str(r["provider"]), tier=str(r.get("tier", "on_demand")), usd_per_hour=hourly, ref=_ref(r))


def model_from_raw(e: Mapping[str, Any]) -> ModelSpec:
    """A :class:`ModelSpec` from a catalogue entry (also used by the GGUF and config.json readers)."""
    heads = int(e["heads"])
    head_dim = int(e.get("head_dim") or int(e["hidden"]) // heads)
    return ModelSpec(
        id=str(e["id"]),
        name=str(e.get("name", e["id"])),
        hf=e.get("hf"),
        layers=int(e["layers"]),
        hidden=int(e["hidden"]),
        heads=heads,
        kv_heads=int(e.get("kv_heads") or heads),
        head_dim=head_dim,
        intermediate=int(e.get("intermediate") or 0),
        vocab=int(e.get("vocab") or 0),
        tied_embeddings=bool(e.get("tied_embeddings", False)),
        max_context=int(e.get("max_context") or 0),
        params_b=float(e["params_b"]),
        active_params_b=float(e["active_params_b"]) if e.get("active_params_b") else None,
        experts=int(e.get("experts") or 0),
        experts_active=int(e.get("experts_active") or 0),
        moe_layers=int(e.get("moe_layers") or 0),
        attention=e.get("attention", "gqa"),
        kv_lora_rank=int(e.get("kv_lora_rank") or 0),
        qk_rope_head_dim=int(e.get("qk_rope_head_dim") or 0),
        sliding_window=int(e["sliding_window"]) if e.get("sliding_window") else None,
        sliding_window_layers=int(e.get("sliding_window_layers") or 0),
        native_dtype=str(e.get("native_dtype", "bf16")),
        notes=str(e.get("notes", "")),
        weights_bytes=float(e["weights_bytes"]) if e.get("weights_bytes") else None,
        weights_format=e.get("weights_format"),
        ref=_ref(e["source"]),
    )


def _weight_format(e: Mapping[str, Any], kind: str) -> WeightFormat:
    return WeightFormat(
        name=str(e["name"]),
        bits=float(e["bits"]),
        kind="gguf" if kind == "gguf" else "dense",
        compute=str(e.get("compute", "fp16")),
        block_bits=float(e["block"]) if e.get("block") else None,
        ref=_ref(e["source"]),
    )


def _billing(e: Mapping[str, Any]) -> BillingTerms:
    terms = BillingTerms(
        ref=_ref(e),
        increment_s=float(e.get("increment_s", 3600)),
        minimum_s=float(e.get("minimum_s", 0)),
        scale_to_zero=bool(e.get("scale_to_zero", False)),
        committed=bool(e.get("committed", False)),
    )
    if terms.increment_s <= 0 or terms.minimum_s < 0:
        raise ValueError(f"billing terms need increment_s > 0 and minimum_s >= 0: {dict(e)!r}")
    return terms


def _api_price(e: Mapping[str, Any]) -> ApiPrice:
    return ApiPrice(str(e["model"]), str(e["provider"]), float(e["input"]), float(e["output"]), _ref(e))


def _flatten_sourced(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Sourced]:
    out: dict[str, Sourced] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and "source" in value and ("value" in value or "range" in value):
            number = value["value"] if "value" in value else (value["range"][0] + value["range"][1]) / 2
            out[name] = Sourced(float(number), _ref(value))
        elif isinstance(value, dict):
            out.update(_flatten_sourced(value, name + "."))
    return out
