"""Sensitivity of a path's outcome to its uncertain inputs: the data of a tornado chart.

Each :class:`Lever` moves one input to a low and a high value and reruns the financial model;
the outcome is the cumulative cash at the end of the horizon. Model size is a lever too: the
replica's capacity is recomputed by InferLab's speed and capacity models for a smaller and a larger
open model on the same hardware (a model that does not fit gives no bar).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from inferlab.planning.catalogue import Catalogue
from inferlab.planning.finance import PathInputs, run_path
from inferlab.planning.memory import estimate_memory
from inferlab.planning.paths import Path, Replica, path_inputs, replica_capacity

Change = Callable[[Catalogue, Path, PathInputs], PathInputs | None]


@dataclass(frozen=True)
class Lever:
    name: str
    low_label: str
    high_label: str
    low: Change
    high: Change


@dataclass(frozen=True)
class Bar:
    lever: str
    low_label: str
    high_label: str
    low: float | None  # outcome with the input at its low value (None: not applicable)
    high: float | None

    @property
    def swing(self) -> float:
        values = [v for v in (self.low, self.high) if v is not None]
        return max(values) - min(values) if len(values) == 2 else 0.0


@dataclass(frozen=True)
class Tornado:
    path: str
    outcome: str
    base: float
    bars: tuple[Bar, ...]  # widest swing first


def _set(name: str, value: float) -> Change:
    return lambda _c, _p, inputs: replace(inputs, **{name: value})  # type: ignore[arg-type]


def _scale_gpu_price(factor: float) -> Change:
    def change(_c: Catalogue, _p: Path, inputs: PathInputs) -> PathInputs:
        return replace(inputs, capex_per_replica=inputs.capex_per_replica * factor,
                       rent_usd_per_gpu_hour=inputs.rent_usd_per_gpu_hour * factor)
    return change


def _scale(name: str, factor: float) -> Change:
    return lambda _c, _p, inputs: replace(inputs, **{name: getattr(inputs, name) * factor})


#: A smaller and a larger open model for each replica (catalogue id, weight format).
MODEL_SIZES: dict[str, tuple[tuple[str, str] | None, tuple[str, str] | None]] = {
    "h100-sxm": (("qwen3-235b-a22b", "fp8"), ("deepseek-v3", "int4")),
    "rtx-4090": (("qwen2.5-coder-32b", "Q4_K_M"), None),
}


def _model(which: int) -> Change:
    def change(catalogue: Catalogue, path: Path, inputs: PathInputs) -> PathInputs | None:
        choice = MODEL_SIZES.get(path.replica.gpu, (None, None))[which]
        if choice is None:
            return None
        swapped = replace(path, replica=replace(path.replica, model=choice[0], quant=choice[1]))
        if not _fits(catalogue, swapped.replica):
            return None
        rps = replica_capacity(catalogue, swapped).replica_requests_per_s
        return replace(inputs, replica_requests_per_s=max(rps, 1e-9)) if rps > 0 else None
    return change


def _fits(catalogue: Catalogue, replica: Replica) -> bool:
    return estimate_memory(catalogue, replica.deployment(catalogue), 8192).fits


LEVERS: tuple[Lever, ...] = (
    Lever("requests per user", "half", "double", _scale("requests_per_user_month", 0.5),
          _scale("requests_per_user_month", 2.0)),
    Lever("price per user", "$30", "$70", _set("price_per_user_month", 30), _set("price_per_user_month", 70)),
    Lever("GPU price (buy and rent)", "-30 %", "+30 %", _scale_gpu_price(0.7), _scale_gpu_price(1.3)),
    Lever("utilisation target", "50 %", "90 %", _set("target_utilisation", 0.5), _set("target_utilisation", 0.9)),
    Lever("model size", "smaller", "larger", _model(0), _model(1)),
    Lever("browser share", "0 %", "80 %", _set("browser_share", 0.0), _set("browser_share", 0.8)),
)


def tornado(catalogue: Catalogue, path: Path, levers: tuple[Lever, ...] = LEVERS) -> Tornado:
    base_inputs = path_inputs(catalogue, path)
    base = run_path(base_inputs).final.cumulative_cash
    bars = []
    for lever in levers:
        outcomes = []
        for change in (lever.low, lever.high):
            changed = change(catalogue, path, base_inputs)
            outcomes.append(None if changed is None else run_path(changed).final.cumulative_cash)
        bars.append(Bar(lever.name, lever.low_label, lever.high_label, outcomes[0], outcomes[1]))
    bars.sort(key=lambda b: b.swing, reverse=True)
    return Tornado(path.title, f"cumulative cash after {base_inputs.months} months", base, tuple(bars))
