"""The verdict on one experiment at one look: roll back, promote, or keep going. A pure function
of the two variants' figures (summed over every gateway) and the judge's settings.

1. Guardrails first (they stop a plainly broken candidate quickly, before any test has power):
   the candidate's error rate is above ``max_error_rate`` with confidence — the lower bound of its
   one-sided 99 % Wilson interval is (with at least ``min_errors`` errors, and above twice the
   control's rate, so that an outage of everything is not blamed on it); or its mean time to first
   token is above ``max_ttft_ratio`` times the control's plus ``ttft_slack_s``.
2. The always-valid test (``sequential``): the error rates differ at level ``alpha`` and the
   candidate's is the higher → roll back.
3. Promotion: both variants have ``promote_min_requests`` requests and the confidence sequence's
   upper bound of the error-rate difference is below ``promote_margin``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from inferlab.config import JudgeSettings
from inferlab.registry.sequential import error_rate_test
from inferlab.registry.stats import Figures

Action = Literal["continue", "rollback", "promote"]
GUARDRAIL_Z = 2.326  # one-sided 99 %


def wilson_lower(errors: int, requests: int, z: float = GUARDRAIL_Z) -> float:
    """The lower bound of the Wilson score interval of an error rate."""
    if requests == 0:
        return 0.0
    rate, z2 = errors / requests, z * z
    centre = rate + z2 / (2 * requests)
    spread = z * math.sqrt(rate * (1 - rate) / requests + z2 / (4 * requests * requests))
    return max(0.0, (centre - spread) / (1 + z2 / requests))


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


def judge(control: Figures, candidate: Figures, settings: JudgeSettings) -> Verdict:
    evidence: dict[str, Any] = {"control": control.view(), "candidate": candidate.view()}
    if candidate.requests < settings.min_requests or control.requests < settings.min_requests:
        return Verdict("continue", "too few requests yet", evidence)
    lower = wilson_lower(candidate.errors, candidate.requests)
    evidence["candidate_error_rate_lower"] = lower
    if (candidate.errors >= settings.min_errors and lower > settings.max_error_rate
            and candidate.error_rate > 2 * control.error_rate):
        return Verdict("rollback", f"guardrail: error rate {candidate.error_rate:.3f} (99 % lower bound "
                                   f"{lower:.3f}) above {settings.max_error_rate:.3f} (control "
                                   f"{control.error_rate:.3f})", evidence)
    c_ttft, t_ttft = control.ttft_mean, candidate.ttft_mean
    if (c_ttft is not None and t_ttft is not None and c_ttft > 0 and candidate.ttft_n >= settings.min_requests
            and t_ttft > settings.max_ttft_ratio * c_ttft + settings.ttft_slack_s):
        return Verdict("rollback", f"guardrail: mean TTFT {t_ttft:.3f}s above {settings.max_ttft_ratio}x "
                                   f"control's {c_ttft:.3f}s + {settings.ttft_slack_s}s", evidence)
    test = error_rate_test(control.errors, control.requests, candidate.errors, candidate.requests,
                           alpha=settings.alpha, mixture_sd=settings.mixture_sd)
    evidence["msprt"] = {**test.to_json(), "alpha": settings.alpha, "mixture_sd": settings.mixture_sd}
    if test.rejects(settings.alpha) and test.difference > 0:
        return Verdict("rollback", f"mSPRT: the candidate's error rate is higher by {test.difference:.4f} "
                                   f"(always-valid at alpha={settings.alpha})", evidence)
    if (min(candidate.requests, control.requests) >= settings.promote_min_requests
            and test.upper < settings.promote_margin):
        return Verdict("promote", f"no worse: the error-rate difference is below {test.upper:.4f} "
                                  f"(< margin {settings.promote_margin})", evidence)
    return Verdict("continue", "no verdict yet", evidence)
