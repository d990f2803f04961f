"""Each model's pool as the planner sees it, from the settings (``capacity:``, ``models:``,
``pricing.hardware``) and the planning catalogue's rental prices; CLI overrides win."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from inferlab.capacity.calibration import replica_throughput
from inferlab.capacity.history import ModelHistory
from inferlab.capacity.planner import ESTIMATED, Pool
from inferlab.config import Settings
from inferlab.config.capacity import ModelCapacity
from inferlab.errors import InvalidRequest
from inferlab.planning.capacity import Demand, Slo, plan_capacity
from inferlab.planning.catalogue import Catalogue
from inferlab.planning.deployment import resolve_deployment


def running_replicas(settings: Settings, model: str) -> int:
    for config in settings.models:
        if config.name == model:
            return len(config.urls) if config.urls else config.replicas
    return 0


def catalogue_price(catalogue: Catalogue, hardware: str, devices: int) -> Decimal | None:
    """The cheapest on-demand rental of ``hardware`` in the planning catalogue, × ``devices``."""
    rentals = [r.usd_per_hour for r in catalogue.accelerator(hardware).rentals if r.tier == "on_demand"]
    return Decimal(str(min(rentals))) * devices if rentals else None


def estimate(catalogue: Catalogue, config: ModelCapacity, hardware: str, history: ModelHistory,
             target_utilisation: float) -> float | None:
    """The planning toolkit's requests/s of one replica within the SLO, for the model's mean request
    sizes (None when the SLO cannot be met or the model does not fit)."""
    assert config.catalogue_model is not None
    deployment = resolve_deployment(catalogue, model=config.catalogue_model, gpu=hardware, gpus=config.devices,
                                    engine=config.engine)
    demand = Demand(1.0, max(1, round(history.mean_prompt_tokens)), max(1, round(history.mean_completion_tokens)))
    plan = plan_capacity(catalogue, deployment, demand, Slo(config.slo_ttft_ms / 1000, config.min_tokens_per_s),
                         target_utilisation=target_utilisation)
    return plan.replica_requests_per_s if plan.feasible else None


def pools(settings: Settings, catalogue: Catalogue | None,
          overrides: Mapping[str, ModelCapacity] | None = None) -> Callable[[ModelHistory], Pool]:
    hardware_cost = settings.pricing.hardware

    def pool_of(history: ModelHistory) -> Pool:
        model = history.model
        config = (overrides or {}).get(model) or settings.capacity.models.get(model)
        hardware = (config.hardware if config else None) or hardware_cost.accelerators.get(model)
        estimated = None
        if config is not None and config.catalogue_model and hardware and catalogue is not None:
            try:
                estimated = estimate(catalogue, config, hardware, history, settings.capacity.target_utilisation)
            except InvalidRequest as exc:  # an unknown model or accelerator: say which
                raise InvalidRequest(f"{model}: the planning toolkit cannot estimate it: {exc.message}",
                                     param="catalogue_model") from None
        throughput = replica_throughput(model, config, estimated, estimated=ESTIMATED)
        devices = config.devices if config else hardware_cost.devices.get(model, 1)
        price = config.usd_per_hour if config else None
        if price is None:
            price = hardware_cost.usd_per_hour.get(model)
        if price is None and hardware is not None and catalogue is not None:
            price = catalogue_price(catalogue, hardware, devices)
        replicas = config.replicas if config is not None and config.replicas is not None else \
            running_replicas(settings, model)
        label = hardware if devices == 1 or hardware is None else f"{devices}×{hardware}"
        return Pool(replicas, throughput, label.upper() if label and len(label) <= 4 else label, price, estimated)

    return pool_of
