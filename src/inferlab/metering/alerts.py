"""Budget alerts: a signed webhook when a tenant's month-end forecast crosses a share of its
monthly quota (tokens or spend).

A tenant's monthly quota is, per field, its stored tenant limit, else its tier's ``tenant_limits``,
else the configured ``quota.limits`` default of the tenant scope — the numbers the rate limiter
enforces. Every ``interval_s`` the service forecasts each tenant with usage and, for each quota and
threshold the forecast (its expected total, or its upper bound) has reached, sends one alert:

- **deduplicated** per (tenant, month, quota, threshold): the delivery is *claimed* in the store
  first (an insert on that key; gateways sharing the store claim it once between them), marked
  sent after the receiver's 2xx, and released for the next check when every attempt failed. A
  claim left by a gateway that died while sending is taken over after ``lease_s``.
- **signed**: ``x-inferlab-signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` keyed by
  ``usage.alerts.secret``; ``x-inferlab-delivery`` is the dedup key, so a receiver can drop a
  repeat (at least once: a 2xx lost on the way back is sent again).
- **retried** ``retries`` times with exponential backoff on a connection error, a timeout, 429 or
  5xx; another 4xx is not retried until the next check.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol

import aiohttp
import orjson
from pydantic import SecretStr

from inferlab.config.usage import AlertSettings
from inferlab.metering.forecast import Forecaster, MonthForecast, TenantForecast

Quota = Literal["monthly_tokens", "monthly_spend_usd"]


@dataclass(frozen=True, slots=True)
class Budget:
    monthly_tokens: float | None = None
    monthly_spend_usd: float | None = None


class AlertLedger(Protocol):
    async def claim(self, key: str, tenant: str, period: str, *, lease_s: float) -> bool:
        """True when this caller may send the alert ``key`` (first claim, or a stale one taken over)."""
        ...

    async def mark_sent(self, key: str) -> None: ...

    async def release(self, key: str) -> None:
        """Forget an unsent claim: the next check may send it again."""
        ...


BudgetOf = Callable[[str], Awaitable[Budget]]


def sign(secret: bytes, body: bytes, at: int) -> str:
    digest = hmac.new(secret, f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def verify(secret: bytes, body: bytes, header: str, *, now: float, tolerance_s: float = 300) -> bool:
    """A receiver's check: the signature matches and is recent (a replay later is refused)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        at = int(fields["t"])
    except (KeyError, ValueError):
        return False
    return abs(now - at) <= tolerance_s and hmac.compare_digest(sign(secret, body, at), header)


class WebhookTarget(Protocol):
    """Where a ``WebhookSender`` posts (``usage.alerts``, ``anomaly.alerts``: config/webhook.py)."""

    @property
    def webhook_url(self) -> str | None: ...
    @property
    def secret(self) -> SecretStr | None: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def retries(self) -> int: ...
    @property
    def backoff_s(self) -> float: ...


class WebhookSender:
    def __init__(self, session: aiohttp.ClientSession, settings: WebhookTarget, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        assert settings.webhook_url is not None and settings.secret is not None
        self._session = session
        self._url = settings.webhook_url
        self._secret = settings.secret.get_secret_value().encode()
        self._settings = settings
        self._sleep = sleep

    async def send(self, delivery: str, payload: dict[str, Any]) -> bool:
        """POST ``payload``; True on a 2xx, False once the attempts are spent or it was refused."""
        body = orjson.dumps(payload)
        delay = self._settings.backoff_s
        for attempt in range(self._settings.retries + 1):
            headers = {"content-type": "application/json", "x-inferlab-delivery": delivery,
                       "x-inferlab-signature": sign(self._secret, body, int(time.time()))}
            try:
                async with self._session.post(self._url, data=body, headers=headers,
                                              timeout=aiohttp.ClientTimeout(total=self._settings.timeout_s)) as answer:
                    if 200 <= answer.status < 300:
                        return True
                    if answer.status != 429 and answer.status < 500:
                        return False  # refused: retrying now cannot help
            except (aiohttp.ClientError, TimeoutError):
                pass
            if attempt < self._settings.retries:
                await self._sleep(delay)
                delay *= 2
        return False


@dataclass(frozen=True, slots=True)
class Crossing:
    tenant: str
    month: str
    quota: Quota
    threshold: float
    limit: float
    forecast: MonthForecast

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.month}:{self.quota}:{self.threshold:g}"

    def payload(self, bound: str) -> dict[str, Any]:
        return {"object": "usage.budget_alert", "id": self.key, "tenant": self.tenant, "month": self.month,
                "quota": self.quota, "limit": self.limit, "threshold": self.threshold, "bound": bound,
                "forecast": {"used": self.forecast.used, "expected": self.forecast.expected,
                             "low": self.forecast.low, "high": self.forecast.high, "interval": 0.95}}


def crossings(forecast: TenantForecast, budget: Budget, thresholds: Sequence[float],
              bound: Literal["expected", "high"]) -> list[Crossing]:
    found = []
    for quota, limit, series in (("monthly_tokens", budget.monthly_tokens, forecast.tokens),
                                 ("monthly_spend_usd", budget.monthly_spend_usd, forecast.spend)):
        if limit is None or limit <= 0:
            continue
        value = series.expected if bound == "expected" else series.high
        found += [Crossing(forecast.tenant, forecast.month, quota, t, limit, series)  # type: ignore[arg-type]
                  for t in thresholds if value >= t * limit]
    return found


class BudgetAlerts:
    """The background service (``run``, on the Lifecycle): check, alert, sleep."""

    def __init__(self, forecaster: Forecaster, budget_of: BudgetOf, ledger: AlertLedger, sender: WebhookSender,
                 settings: AlertSettings, logger: logging.Logger, *, lease_s: float = 600.0) -> None:
        self._forecaster = forecaster
        self._budget_of = budget_of
        self._ledger = ledger
        self._sender = sender
        self._settings = settings
        self._logger = logger
        self._lease_s = lease_s

    async def check(self, today: date | None = None) -> list[str]:
        """One pass; the keys of the alerts delivered."""
        sent = []
        for forecast in await self._forecaster.forecast(today or datetime.now(UTC).date()):
            budget = await self._budget_of(forecast.tenant)
            for crossing in crossings(forecast, budget, self._settings.thresholds, self._settings.bound):
                if not await self._ledger.claim(crossing.key, crossing.tenant, crossing.month, lease_s=self._lease_s):
                    continue
                if await self._sender.send(crossing.key, crossing.payload(self._settings.bound)):
                    await self._ledger.mark_sent(crossing.key)
                    sent.append(crossing.key)
                else:
                    await self._ledger.release(crossing.key)
                    self._logger.warning("budget alert not delivered", extra={"alert": crossing.key})
        return sent

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # a failed check (store down...) is logged, and must not end the service
                self._logger.exception("budget alert check failed")
            await asyncio.sleep(self._settings.interval_s)
