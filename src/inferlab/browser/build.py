"""The browser part of the composition root: the catalogue, the local usage reports (into the
metering step's outbox), the server-fallback policy, and where the built client and the
playground are."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from inferlab.browser.catalogue import BrowserCatalogue
from inferlab.browser.memory import MemoryReportPacer, MemorySeenReports
from inferlab.browser.reports import LocalUsageReports
from inferlab.browser.step import ServerFallbackPolicy
from inferlab.config import Settings
from inferlab.metering.protocol import UsageRecorder
from inferlab.tenants.directory import TenantDirectory

STATIC = Path(__file__).resolve().parent / "static"  # the playground page
SOURCE_CLIENT = Path(__file__).resolve().parents[3] / "clients" / "browser" / "dist"  # a source checkout's build


@dataclass
class Browser:
    catalogue: BrowserCatalogue
    reports: LocalUsageReports | None  # None without metering: nowhere to record local usage
    policy: ServerFallbackPolicy
    client_dir: Path
    static_dir: Path
    cache_max_age_s: int

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        await self.catalogue.prepare()
        yield


def build_browser(settings: Settings, *, recorder: UsageRecorder | None, tenants: TenantDirectory) -> Browser:
    config = settings.browser
    catalogue = BrowserCatalogue(config.models)
    reports = None
    if recorder is not None:
        seen = MemorySeenReports(config.remembered_reports)
        reports = LocalUsageReports(
            catalogue, recorder, tenants, seen, MemoryReportPacer(config.reports_per_minute, config.reports_burst),
            max_age_s=config.max_report_age_s, skew_s=config.max_clock_skew_s,
            ack_timeout_s=settings.metering.ack_timeout_s, forget=seen.forget)
    return Browser(catalogue, reports, ServerFallbackPolicy(config.server_fallback_tiers),
                   (config.client_dir or SOURCE_CLIENT).expanduser(), STATIC, config.cache_max_age_s)
