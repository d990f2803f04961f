"""Per-variant figures of running experiments: requests, errors, time to first token,
inter-token latency, output tokens, cost and user feedback. Kept in memory per gateway, written to
the store as this gateway's cumulative row (``experiment_stats``) and summed across gateways when
an experiment is judged."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from inferlab.registry.model import Variant


@dataclass(slots=True)
class Figures:
    """Sums, so that rows of several gateways add up."""

    requests: int = 0
    errors: int = 0
    ttft_sum: float = 0.0
    ttft_sq: float = 0.0
    ttft_n: int = 0
    itl_sum: float = 0.0
    itl_n: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    feedback_up: int = 0
    feedback_down: int = 0

    def add(self, other: Figures) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figures:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def ttft_mean(self) -> float | None:
        return self.ttft_sum / self.ttft_n if self.ttft_n else None

    def view(self) -> dict[str, Any]:
        return {**self.to_json(), "error_rate": self.error_rate, "ttft_mean_s": self.ttft_mean,
                "itl_mean_s": self.itl_sum / self.itl_n if self.itl_n else None,
                "output_tokens_mean": self.output_tokens / self.requests if self.requests else None}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One finished request of one variant."""

    ok: bool
    ttft_s: float | None = None
    itl_s: list[float] | None = None
    output_tokens: int = 0
    cost_usd: float = 0.0


class VariantObserver(Protocol):
    """Where per-variant outcomes go besides the store (``RegistryMetrics``: Prometheus)."""

    def variant_outcome(self, model: str, experiment: str, variant: Variant, outcome: Outcome) -> None: ...

    def variant_feedback(self, model: str, experiment: str, variant: Variant, positive: bool) -> None: ...


class NullVariantObserver:
    def variant_outcome(self, model: str, experiment: str, variant: Variant, outcome: Outcome) -> None:
        pass

    def variant_feedback(self, model: str, experiment: str, variant: Variant, positive: bool) -> None:
        pass


class VariantStats:
    """This gateway's cumulative figures per (experiment, variant). Never reset while the process
    lives (its store row is replaced by them): requests of an experiment decided meanwhile still
    add to the row they belong to. A handful of numbers per experiment ever run."""

    def __init__(self, observer: VariantObserver | None = None) -> None:
        self._figures: dict[tuple[str, Variant], Figures] = {}
        self._observer: VariantObserver = observer or NullVariantObserver()
        self.dirty: set[tuple[str, Variant]] = set()

    def figures(self, experiment: str, variant: Variant) -> Figures:
        key = (experiment, variant)
        found = self._figures.get(key)
        if found is None:
            found = self._figures[key] = Figures()
        return found

    def record(self, model: str, experiment: str, variant: Variant, outcome: Outcome) -> None:
        figures = self.figures(experiment, variant)
        figures.requests += 1
        figures.errors += 0 if outcome.ok else 1
        if outcome.ttft_s is not None:
            figures.ttft_sum += outcome.ttft_s
            figures.ttft_sq += outcome.ttft_s ** 2
            figures.ttft_n += 1
        if outcome.itl_s:
            figures.itl_sum += sum(outcome.itl_s)
            figures.itl_n += len(outcome.itl_s)
        figures.output_tokens += outcome.output_tokens
        figures.cost_usd += outcome.cost_usd
        self.dirty.add((experiment, variant))
        self._observer.variant_outcome(model, experiment, variant, outcome)

    def feedback(self, model: str, experiment: str, variant: Variant, positive: bool) -> None:
        figures = self.figures(experiment, variant)
        if positive:
            figures.feedback_up += 1
        else:
            figures.feedback_down += 1
        self.dirty.add((experiment, variant))
        self._observer.variant_feedback(model, experiment, variant, positive)

    def take_dirty(self) -> list[tuple[str, Variant, Figures]]:
        """The rows changed since the last call (to write to the store)."""
        dirty, self.dirty = self.dirty, set()
        return [(experiment, variant, self._figures[(experiment, variant)]) for experiment, variant in sorted(dirty)]
