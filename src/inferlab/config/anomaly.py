"""``anomaly:``: the anomaly detector (``inferlab.anomaly``) — what it samples, how it judges,
and where it alerts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from inferlab.config.base import StrictModel
from inferlab.config.webhook import WebhookSettings


class AnomalySettings(StrictModel):
    enabled: bool = Field(False, description="sample the usage ledger every interval_s and detect anomalies "
                                             "(needs the store: features.metering or features.auth)")
    interval_s: float = Field(300.0, ge=1, description="one sample of every series per interval")
    lag_s: float = Field(15.0, ge=0, description="an interval is read this long after it ends: the usage events "
                                                 "of its last seconds are still being shipped to the store")
    season: Literal["daily", "weekly", "none"] = Field(
        "daily", description="the seasonal profile removed before judging a value")
    seasons: int = Field(7, ge=1, le=28, description="previous days (weeks) the profile looks at")
    window: int = Field(192, ge=12, description="clean residuals in the baseline (median/MAD)")
    min_history: int = Field(24, ge=6, description="residuals needed before a series is judged")
    spike_z: float = Field(6.0, gt=0)
    shift_z: float = Field(3.5, gt=0, description="two intervals of three at this robust z: a level shift")
    drift_z: float = Field(3.9, gt=0, description="mean z of the last trend_window intervals × √window")
    trend_window: int = Field(8, ge=3)
    cusum_h: float = Field(10.0, gt=0)
    min_requests: int = Field(5, ge=1, description="an interval with fewer requests says nothing of latency or "
                                                   "error rate (it is skipped for those)")
    min_peers: int = Field(3, ge=2, description="replicas of a model needed to compare each with its peers")
    quiet_intervals: int = Field(3, ge=1, description="intervals without a detection that close an incident")
    backfill_s: float = Field(86400.0, ge=0, description="history read from the ledger at start")
    recent: int = Field(100, ge=1, le=1000, description="closed incidents GET /admin/anomalies lists")
    alerts: WebhookSettings = Field(default_factory=WebhookSettings,
                                    description="a signed webhook at each incident's opening (and closing)")

    @model_validator(mode="after")
    def _alerts_complete(self) -> AnomalySettings:
        if (self.alerts.webhook_url is None) != (self.alerts.secret is None):
            raise ValueError("anomaly.alerts needs both webhook_url and secret (or neither)")
        return self
