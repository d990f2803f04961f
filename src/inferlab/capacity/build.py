"""Each model's pool as the planner sees it, from the settings (``capacity:``, ``models:``,
``pricing.hardware``) and the planning catalogue's rental prices; CLI overrides win."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from inferlab.capacity.calibration import replica_throughput
from inferlab.capacity.planner import Pool
from inferlab.config import Settings
from inferlab.config.capacity import ModelCapacity
from inferlab.planning.catalogue import Catalogue


def running_replicas(settings: Settings, model: str) -> int:
    for config in settings.models:
        if config.name == model:
            return len(config.urls) if config.urls else config.replicas
    return 0


def catalogue_price(catalogue: Catalogue, hardware: str, devices: int) -> Decimal | None:
    """The cheapest on-demand rental of ``hardware`` in the planning catalogue, × ``devices``."""
    rentals = [r.usd_per_hour for r in catalogue.accelerator(hardware).rentals if r.tier == "on_demand"]
    return Decimal(str(min(rentals))) * devices if rentals else None


def pools(settings: Settings, catalogue: Catalogue | None,
          overrides: Mapping[str, ModelCapacity] | None = None) -> Callable[[str], Pool]:
    hardware_cost = settings.pricing.hardware

    def pool_of(model: str) -> Pool:
        config = (overrides or {}).get(model) or settings.capacity.models.get(model)
        throughput = replica_throughput(model, config)
        hardware = (config.hardware if config else None) or hardware_cost.accelerators.get(model)
        devices = config.devices if config else hardware_cost.devices.get(model, 1)
        price = config.usd_per_hour if config else None
        if price is None:
            price = hardware_cost.usd_per_hour.get(model)
        if price is None and hardware is not None and catalogue is not None:
            price = catalogue_price(catalogue, hardware, devices)
        replicas = config.replicas if config is not None and config.replicas is not None else \
            running_replicas(settings, model)
        label = hardware if devices == 1 or hardware is None else f"{devices}×{hardware}"
        return Pool(replicas, throughput, label.upper() if label and len(label) <= 4 else label, price)

    return pool_of
