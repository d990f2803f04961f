"""An always-valid test of the difference of two error rates: the mixture sequential probability
ratio test (mSPRT; Johari, Pekelis and Walsh, "Always valid inference", 2017) with a normal
mixture over the difference, on the normal approximation of the two proportions.

Its statistic Λ may be looked at after every request, or every interval, for as long as one
likes: the chance that it *ever* reaches 1/α when both variants are alike is at most α. The same
computation inverted gives a confidence sequence for the difference, valid at every look at
once, which is what promotion reads (the candidate is no worse than ``margin``).

Fixed-horizon tests checked repeatedly, as analysis-driven canaries usually do, are not valid this
way: looked at every interval their false-alarm rate grows with the number of looks."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SequentialResult:
    difference: float  # candidate's error rate minus control's
    variance: float
    log_lambda: float  # log of the mixture likelihood ratio against "no difference"
    lower: float  # the confidence sequence of the difference at this look
    upper: float

    def rejects(self, alpha: float) -> bool:
        """Whether "no difference" is rejected at level ``alpha`` (valid at any stopping time)."""
        return self.log_lambda >= math.log(1.0 / alpha)

    def to_json(self) -> dict[str, float]:
        return {"difference": self.difference, "variance": self.variance, "log_lambda": self.log_lambda,
                "lower": self.lower, "upper": self.upper}


def _rate(errors: int, requests: int) -> float:
    """The error rate, kept off 0 and 1 so that the variance is never zero (add a half error)."""
    return (errors + 0.5) / (requests + 1.0)


def error_rate_test(control_errors: int, control_requests: int, candidate_errors: int, candidate_requests: int,
                    *, alpha: float, mixture_sd: float) -> SequentialResult:
    """mSPRT of H0: equal error rates, with a N(0, mixture_sd²) mixture over the difference."""
    p_c, p_t = _rate(control_errors, control_requests), _rate(candidate_errors, candidate_requests)
    n_c, n_t = max(control_requests, 1), max(candidate_requests, 1)
    variance = p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t
    difference = candidate_errors / n_t - control_errors / n_c
    tau2 = mixture_sd ** 2
    log_lambda = 0.5 * math.log(variance / (variance + tau2)) + tau2 * difference ** 2 / (2 * variance * (variance + tau2))
    # {θ: Λ(θ) < 1/α}: (d-θ)² τ² / (2V(V+τ²)) < log(1/α) + ½ log((V+τ²)/V)
    half = math.sqrt(2 * variance * (variance + tau2) / tau2
                     * (math.log(1.0 / alpha) + 0.5 * math.log((variance + tau2) / variance)))
    return SequentialResult(difference, variance, log_lambda, difference - half, difference + half)
