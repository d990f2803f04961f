"""``build_anomaly``: the detector over the store's ledger, its alerts and metrics, on the Lifecycle."""

from __future__ import annotations

import logging

import aiohttp

from inferlab.anomaly.service import AnomalyDetector
from inferlab.config import ConfigError, Settings
from inferlab.lifecycle import Lifecycle
from inferlab.metrics import GatewayMetrics
from inferlab.store.engine import Database


def build_anomaly(settings: Settings, database: Database | None, session: aiohttp.ClientSession,
                  lifecycle: Lifecycle, metrics: GatewayMetrics | None, logger: logging.Logger,
                  *, jobs: bool = True) -> AnomalyDetector | None:
    """The detector when ``anomaly.enabled`` (``jobs``: run it in the background, as ``serve`` does)."""
    if not settings.anomaly.enabled:
        return None
    if database is None:
        raise ConfigError("anomaly.enabled needs the store (features.metering or features.auth)")
    from inferlab.metering.alerts import WebhookSender
    from inferlab.store.anomalies import SqlIncidentStore, SqlUsageWindows

    alerts = settings.anomaly.alerts
    detector = AnomalyDetector(
        SqlUsageWindows(database), SqlIncidentStore(database), settings.anomaly, logger,
        alerter=WebhookSender(session, alerts) if alerts.webhook_url is not None else None,
        observer=metrics.anomaly if metrics is not None else None)
    if jobs:
        lifecycle.background(detector.run)
    return detector
