"""How good, and how sure: pass@k, and confidence intervals for a mean score over problems.

* :func:`pass_at_k` is the unbiased estimator of Chen et al. (2021, "Evaluating Large Language
  Models Trained on Code"): with ``n`` samples of which ``c`` pass, the chance that at least one of
  ``k`` samples drawn without replacement passes is ``1 - C(n-c, k) / C(n, k)``. It is computed as
  a running product, so large ``n`` never builds huge binomials.
* :func:`wilson_interval` is the Wilson score interval of a proportion, right where the normal
  approximation is wrong (small samples, scores near 0 or 1 — SmolLM2 on HumanEval is both).
* :func:`bootstrap_interval` resamples problems (percentile bootstrap, seeded) for scores that are
  not 0/1 per problem, such as pass@k averaged over problems with ``n > 1`` samples.
* :func:`summarise` picks the right one for a list of per-problem scores.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["Score", "bootstrap_interval", "pass_at_k", "summarise", "wilson_interval"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate for one problem: ``n`` samples, ``c`` correct."""
    if n < 1 or not 0 <= c <= n:
        raise ValueError(f"need n >= 1 and 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of samples ({n}), got {k}")
    if n - c < k:
        return 1.0
    fail_all = 1.0
    for drawn in range(n - c + 1, n + 1):
        fail_all *= 1.0 - k / drawn
    return 1.0 - fail_all


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: float, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / total`` (``(0, 1)`` when ``total`` is 0)."""
    if total <= 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))  # exact at 0 and 1, not 1e-17 off


def bootstrap_interval(
    values: Sequence[float], confidence: float = 0.95, *, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (seeded: the same inputs give the same interval)."""
    _z(confidence)
    if not values:
        return 0.0, 1.0
    rng = random.Random(seed)
    count = len(values)
    means = sorted(sum(rng.choices(values, k=count)) / count for _ in range(resamples))
    tail = (1 - confidence) / 2
    low = means[max(0, math.floor(tail * resamples))]
    high = means[min(resamples - 1, math.ceil((1 - tail) * resamples) - 1)]
    return low, high


@dataclass(frozen=True, slots=True)
class Score:
    """A mean score over problems with its interval and how the interval was made."""

    value: float
    low: float
    high: float
    problems: int
    method: str  # "wilson" or "bootstrap"
    confidence: float = 0.95

    def to_dict(self) -> dict[str, float | int | str]:
        return {"value": self.value, "low": self.low, "high": self.high, "problems": self.problems,
                "interval": self.method, "confidence": self.confidence}


def summarise(values: Sequence[float], confidence: float = 0.95, *, seed: int = 0) -> Score:
    """The mean of per-problem scores; Wilson when each is 0 or 1, else a seeded bootstrap."""
    total = len(values)
    mean = sum(values) / total if total else 0.0
    if all(value in (0.0, 1.0) for value in values):
        low, high = wilson_interval(sum(values), total, confidence)
        return Score(mean, low, high, total, "wilson", confidence)
    low, high = bootstrap_interval(values, confidence, seed=seed)
    return Score(mean, low, high, total, "bootstrap", confidence)
