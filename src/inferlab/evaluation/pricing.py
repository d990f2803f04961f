"""Cost per 1,000 problems: the planning toolkit's price of a deployment times the tokens a suite used.

A deployment is written ``CATALOGUE_MODEL@ACCELERATOR[:DEVICES][/QUANT]`` (e.g.
``smollm2-135m@l4/Q4_1``, ``llama-3.1-8b@h100-sxm:2/fp8``) with catalogue ids (``inferlab plan``
lists them). The planning toolkit (:func:`inferlab.planning.service.cost`) estimates that
deployment's throughput at the suite's mean prompt and completion length and prices a request
from the accelerator's rental (or, without one, ownership) cost at its default utilisation; a
problem costs that times its requests. The result is the cost of *that* deployment serving the
tokens measured here, not of the machine the evaluation ran on — an accelerator with no price in
the catalogue (the CPU entries) needs ``rent_usd_per_hour``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inferlab.errors import InferLabError
from inferlab.evaluation.errors import EvaluationError
from inferlab.evaluation.results import SuiteResult
from inferlab.planning import service
from inferlab.planning.catalogue import Catalogue
from inferlab.planning.schemas import CostIn

__all__ = ["Deployment", "parse_deployment", "price_result"]

_SPEC = re.compile(r"^(?P<model>[^@\s]+)@(?P<gpu>[^/:\s]+)(?::(?P<n>\d+))?(?:/(?P<quant>\S+))?$")


@dataclass(frozen=True, slots=True)
class Deployment:
    model: str
    gpu: str
    quant: str | None = None
    gpus: int = 1

    def label(self) -> str:
        devices = f":{self.gpus}" if self.gpus > 1 else ""
        quant = f"/{self.quant}" if self.quant else ""
        return f"{self.model}@{self.gpu}{devices}{quant}"


def parse_deployment(text: str) -> Deployment:
    match = _SPEC.match(text.strip())
    if match is None:
        raise EvaluationError(f"deployment {text!r} is not CATALOGUE_MODEL@ACCELERATOR[:DEVICES][/QUANT], "
                              "e.g. smollm2-135m@l4/Q4_1")
    gpus = int(match["n"]) if match["n"] else 1
    if gpus < 1:
        raise EvaluationError(f"deployment {text!r}: the device count must be at least 1")
    return Deployment(match["model"], match["gpu"], match["quant"], gpus)


def price_result(result: SuiteResult, deployment: Deployment, catalogue: Catalogue, *,
                 rent_usd_per_hour: float | None = None) -> SuiteResult:
    """``result`` with its cost per 1,000 problems on ``deployment`` (None, with the reason, when unknown)."""
    requests = result.requests
    if not requests or not result.completion_tokens:
        return result.with_cost(None, "no completed requests to price")
    prompt = max(1, round(result.prompt_tokens / requests))
    output = max(1, round(result.completion_tokens / requests))
    try:
        answer = service.cost(catalogue, CostIn(
            model=deployment.model, gpu=deployment.gpu, quant=deployment.quant, gpus=deployment.gpus,
            prompt_tokens=prompt, output_tokens=output, rent_usd_per_hour=rent_usd_per_hour,
        ))
    except InferLabError as exc:
        raise EvaluationError(f"deployment {deployment.label()}: {exc.message}") from None
    if not answer["fits"]:
        return result.with_cost(None, f"{deployment.label()} does not fit: {answer['reason']}")
    kind = "rented" if answer["rented_usd_per_request"] is not None else "owned"
    per_request = answer[f"{kind}_usd_per_request"]
    if per_request is None:
        return result.with_cost(None, f"{deployment.label()}: the catalogue has no price for it (give rent_usd_per_hour)")
    per_problem = per_request * requests / result.problems
    note = (f"{answer['deployment']}, {kind}, {answer['utilisation']:.0%} utilised, planning estimate "
            f"{answer['output_tokens_per_s']:,.0f} tok/s at {prompt}+{output} tokens a request")
    return result.with_cost(per_problem * 1000, note)
