"""``slo:``: how service-level attainment is measured in each gateway (``features.slo``). The
targets are the tiers' (``tenants:``, each tier's ``slo``)."""

from __future__ import annotations

from pydantic import Field, field_validator

from inferlab.config.base import StrictModel


class SloSettings(StrictModel):
    slot_s: float = Field(60.0, gt=0, le=3600, description="the rolling windows' time resolution")
    windows_s: list[float] = Field(
        [300.0, 3600.0, 21_600.0], min_length=1,
        description="windows reported by GET /admin/slo (each a multiple of slot_s, rounded up); the longest "
                    "decides the memory kept. Longer windows (days) are Prometheus's: inferlab_slo_requests")

    @field_validator("windows_s")
    @classmethod
    def _positive(cls, windows: list[float]) -> list[float]:
        if any(window <= 0 for window in windows):
            raise ValueError("every window must be positive")
        return sorted(set(windows))
