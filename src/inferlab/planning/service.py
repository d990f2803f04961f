"""The four planning questions as functions from validated requests to JSON-ready dicts.

Shared by the CLI (which renders them as tables or ``--json``) and the HTTP API. ``estimate`` and
``cost`` first check that the model fits the devices at the request's context: ``fits`` and
``reason`` say so; a cost for a deployment that does not fit has no prices (all null), never a
price for hardware that cannot run the model.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from inferlab.errors import InvalidRequest
from inferlab.planning.capacity import Demand, Slo, demand_from_users, plan_capacity
from inferlab.planning.catalogue import Catalogue
from inferlab.planning.cost import OwnedCosts, compare_tco, default_owned_costs, usd_per_request
from inferlab.planning.deployment import Deployment, resolve_deployment
from inferlab.planning.memory import estimate_memory, max_batch, max_context, misfit_reason
from inferlab.planning.schemas import CapacityIn, CostIn, DeploymentIn, EstimateIn, VramIn
from inferlab.planning.specs import GIB, BillingTerms, SourceRef
from inferlab.planning.speculative import Speculation
from inferlab.planning.throughput import estimate_throughput, max_throughput


def deployment_of(catalogue: Catalogue, req: DeploymentIn) -> Deployment:
    return resolve_deployment(
        catalogue,
        model=req.model,
        gpu=req.gpu,
        quant=req.quant,
        kv_dtype=req.kv_dtype,
        engine=req.engine,
        gpus=req.gpus,
        tensor_parallel=req.tensor_parallel,
        pipeline_parallel=req.pipeline_parallel,
        memory_gb=req.memory_gb,
        flash_attention=req.flash_attention,
        expert_parallel=req.expert_parallel,
    )


def vram(catalogue: Catalogue, req: VramIn) -> dict[str, Any]:
    d = deployment_of(catalogue, req)
    est = estimate_memory(catalogue, d, req.context, req.batch)
    fields = ("weights", "kv_cache", "compute", "overhead", "required", "capacity", "budget", "kv_pool")
    gib = {k: getattr(est, k) / GIB for k in fields}
    return {
        "deployment": est.deployment,
        "context": req.context,
        "batch": req.batch,
        "devices": est.devices,
        "per_device_gib": gib,
        "kv_bytes_per_token": est.kv_bytes_per_token,
        "fits": est.fits,
        "max_context": asdict(max_context(catalogue, d, req.batch)),
        "max_batch": asdict(max_batch(catalogue, d, req.context)),
        "notes": list(est.notes),
    }


def fit_check(catalogue: Catalogue, d: Deployment, context: int) -> dict[str, Any]:
    """Whether one sequence of ``context`` tokens fits the deployment, and why not."""
    est = estimate_memory(catalogue, d, context, 1)
    return {
        "fits": est.fits,
        "reason": misfit_reason(est),
        "context": context,
        "required_gib": est.required / GIB,
        "budget_gib": est.budget / GIB,
        "kv_pool_gib": est.kv_pool / GIB,
    }


def speculation_of(req: EstimateIn) -> Speculation | None:
    """The request's speculative decoding (both ``draft_tokens`` and ``acceptance_length``, or none)."""
    if req.draft_tokens is None and req.acceptance_length is None:
        return None
    if req.draft_tokens is None or req.acceptance_length is None:
        raise InvalidRequest("speculative decoding needs both draft_tokens and acceptance_length", param="draft_tokens")
    return Speculation(req.draft_tokens, req.acceptance_length, req.draft_params_b)


def estimate(catalogue: Catalogue, req: EstimateIn) -> dict[str, Any]:
    d = deployment_of(catalogue, req)
    fit = fit_check(catalogue, d, req.context or req.prompt_tokens + req.output_tokens)
    spec = speculation_of(req)
    est = estimate_throughput(
        catalogue, d, prompt_tokens=req.prompt_tokens, output_tokens=req.output_tokens, concurrency=req.concurrency,
        speculation=spec,
    )
    saturated = max_throughput(catalogue, d, isl=req.prompt_tokens, osl=req.output_tokens, speculation=spec)
    return {"fits": fit["fits"], "reason": fit["reason"], "memory": fit, "bandwidth_gbps": d.accelerator.bandwidth_gbps,
            "estimate": asdict(est), "saturated": asdict(saturated)}


_PRICED = ("owned", "rented", "rent_usd_per_hour", "rented_hours_per_month", "owned_usd_per_mtok", "rented_usd_per_mtok",
           "owned_usd_per_request", "rented_usd_per_request", "breakeven_utilisation", "breakeven_months")


def cost(catalogue: Catalogue, req: CostIn) -> dict[str, Any]:
    d = deployment_of(catalogue, req)
    fit = fit_check(catalogue, d, req.context or req.prompt_tokens + req.output_tokens)
    if not fit["fits"]:
        return {"deployment": d.label(), "fits": False, "reason": fit["reason"], "memory": fit,
                "utilisation": req.utilisation, "output_tokens_per_s": None, "batch": 0, "assumptions": [],
                **dict.fromkeys(_PRICED)}
    speed = max_throughput(catalogue, d, isl=req.prompt_tokens, osl=req.output_tokens)
    owned = default_owned_costs(catalogue, d, req.setting)
    if owned is not None or req.purchase_usd is not None:
        owned = _override_owned(catalogue, req, owned)
    tco = compare_tco(
        catalogue,
        d,
        speed.output_tokens_per_s,
        utilisation=req.utilisation,
        setting=req.setting,
        owned=owned,
        rent_usd_per_hour=req.rent_usd_per_hour * d.devices if req.rent_usd_per_hour else None,
        reserved=req.reserved,
        hours_per_day=req.hours_per_day,
        billing=_billing_override(catalogue, d, req),
    )
    result = asdict(tco)
    for kind in ("owned", "rented"):
        per_mtok = result[f"{kind}_usd_per_mtok"]
        result[f"{kind}_usd_per_request"] = usd_per_request(per_mtok, req.output_tokens) if per_mtok else None
        if result[kind] is not None:
            result[kind]["total"] = getattr(tco, kind).total
    result.update({"batch": speed.batch, "fits": True, "reason": None, "memory": fit})
    return result


def _billing_override(catalogue: Catalogue, d: Deployment, req: CostIn) -> BillingTerms | None:
    """The request's billing increment/minimum over the provider's terms (None: no override)."""
    if req.billing_increment_s is None and req.billing_minimum_s is None:
        return None
    base = catalogue.billing_for(None if req.rent_usd_per_hour else d.accelerator.rental())
    return replace(
        base,
        ref=SourceRef("given in the request", "user-supplied", "E"),
        increment_s=req.billing_increment_s or base.increment_s,
        minimum_s=req.billing_minimum_s if req.billing_minimum_s is not None else base.minimum_s,
    )


def _override_owned(catalogue: Catalogue, req: CostIn, owned: OwnedCosts | None) -> OwnedCosts:
    """The catalogue's owned-hardware figures with the request's overrides applied."""
    base = owned or OwnedCosts(
        purchase_usd=0.0,
        amortisation_years=catalogue.economic("amortisation_years.consumer"),
        power_w=req.power_w or 0.0,
        pue=catalogue.economic(f"pue.{req.setting}"),
        electricity_usd_per_kwh=catalogue.economic(f"electricity_usd_per_kwh.{req.setting}"),
    )
    changes = {
        "purchase_usd": req.purchase_usd,
        "power_w": req.power_w,
        "electricity_usd_per_kwh": req.electricity_usd_per_kwh,
        "pue": req.pue,
        "amortisation_years": req.amortisation_years,
        "colo_usd_per_kw_month": req.colo_usd_per_kw_month,
    }
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


def capacity(catalogue: Catalogue, req: CapacityIn) -> dict[str, Any]:
    d = deployment_of(catalogue, req)
    if req.requests_per_second is not None:
        demand = Demand(req.requests_per_second, req.prompt_tokens, req.output_tokens, req.users)
    elif req.users is not None:
        demand = demand_from_users(
            req.users,
            active_fraction=req.active_fraction,
            requests_per_active_user_per_minute=req.requests_per_active_user_per_minute,
            prompt_tokens=req.prompt_tokens,
            output_tokens=req.output_tokens,
        )
    else:
        raise InvalidRequest("give either users or requests_per_second", param="users")
    plan = plan_capacity(
        catalogue, d, demand, Slo(req.slo_ttft_s, req.slo_tokens_per_s), target_utilisation=req.target_utilisation
    )
    return {"demand": asdict(demand), "plan": asdict(plan)}


def catalogue_summary(catalogue: Catalogue) -> dict[str, Any]:
    accelerators = [
        {
            "id": a.id,
            "name": a.name,
            "kind": a.kind,
            "memory_gb": a.memory_gb,
            "memory_gb_options": list(a.memory_gb_options),
            "bandwidth_gbps": a.bandwidth_gbps,
            "tflops": dict(a.tflops),
            "tdp_w": a.tdp_w,
            "purchase": asdict(a.purchase) if a.purchase else None,
            "rental": [asdict(r) for r in a.rentals],
            "sources": {k: asdict(v) for k, v in a.sources.items()},
        }
        for a in catalogue.accelerators.values()
    ]
    models = [asdict(m) for m in catalogue.models.values()]
    formats = sorted({f.name: asdict(f) for f in catalogue.weight_formats.values()}.values(), key=lambda f: f["name"])
    kv = sorted({k.name: asdict(k) for k in catalogue.kv_dtypes.values()}.values(), key=lambda k: k["name"])
    billing = {key: asdict(terms) for key, terms in catalogue.billing.items()}
    return {"accelerators": accelerators, "models": models, "weight_formats": formats, "kv_dtypes": kv,
            "billing": billing}
