"""``usage:``: the read side of the usage ledger — where reports are answered from, and budget
alerts on each tenant's month-end forecast."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from inferlab.config.base import HTTP, StrictModel, check_url
from inferlab.config.webhook import WebhookSettings


class AnalyticsSettings(StrictModel):
    backend: Literal["store", "clickhouse", "chdb"] = Field(
        "store", description="store: the database's rollups; clickhouse: a server at clickhouse_url; "
                             "chdb: ClickHouse in process (pip install 'inferlab[analytics]')")
    clickhouse_url: SecretStr | None = Field(None, description="http(s)://user:password@host:8123")
    clickhouse_database: str = Field("inferlab", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    chdb_path: str | None = Field(None, description="chdb: where its data lives; default <data_dir>/chdb")

    @field_validator("clickhouse_url")
    @classmethod
    def _url(cls, url: SecretStr | None) -> SecretStr | None:
        return SecretStr(check_url(url.get_secret_value(), HTTP)) if url is not None else None

    @model_validator(mode="after")
    def _url_when_needed(self) -> AnalyticsSettings:
        if self.backend == "clickhouse" and self.clickhouse_url is None:
            raise ValueError("usage.analytics.backend 'clickhouse' needs clickhouse_url")
        return self


class AlertSettings(WebhookSettings):
    """A webhook (its target: ``WebhookSettings``) when a tenant's month-end forecast crosses a share
    of its monthly quota."""

    enabled: bool = False
    thresholds: list[float] = Field([0.8, 1.0], min_length=1, description="shares of the quota that alert")
    bound: Literal["expected", "high"] = Field(
        "expected", description="which forecast crosses: the expected total, or the interval's upper bound")
    interval_s: float = Field(900.0, ge=1, description="how often forecasts are checked")

    @field_validator("thresholds")
    @classmethod
    def _shares(cls, thresholds: list[float]) -> list[float]:
        if any(t <= 0 for t in thresholds):
            raise ValueError("thresholds are shares of the quota, above 0")
        return sorted(set(thresholds))

    @model_validator(mode="after")
    def _complete(self) -> AlertSettings:
        if self.enabled and (self.webhook_url is None or self.secret is None):
            raise ValueError("usage.alerts needs webhook_url and secret when enabled")
        return self


class UsageSettings(StrictModel):
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    history_days: int = Field(91, ge=7, le=730, description="daily history a forecast is fitted on")
