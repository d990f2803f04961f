"""The metering part of the composition root: the step, the outbox, the shipper, their lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from inferlab.config import Settings
from inferlab.metering.outbox import Outbox, OutboxObserver
from inferlab.metering.protocol import Pricing, UsageObserver
from inferlab.metering.shipper import Shipper, ShipperObserver
from inferlab.metering.sink import TeeStore, UsageSink
from inferlab.metering.step import HardwareOf, MeterUsage
from inferlab.metering.tokenizers import ReplicaTokenizers
from inferlab.router import ModelRouter
from inferlab.store.engine import Database
from inferlab.store.usage import SqlUsageStore

OUTBOX_FILE = "usage-outbox.db"
SQLITE_BATCH = 1000
log = logging.getLogger("inferlab.metering")


def outbox_path(settings: Settings) -> Path:
    return Path(settings.metering.outbox_path or Path(settings.data_dir) / OUTBOX_FILE).expanduser()


@dataclass
class Metering:
    step: MeterUsage
    outbox: Outbox
    shipper: Shipper
    store: SqlUsageStore
    shutdown_timeout_s: float

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Open the outbox and ship; at stop, commit and fsync the buffer, make a last attempt to
        ship everything (bounded), and close."""
        await self.outbox.start()
        try:
            async with _background(self.shipper):
                yield
        finally:
            try:
                if not await self.outbox.flush(self.shutdown_timeout_s):
                    log.error("the outbox was not flushed at shutdown", extra={"buffered": self.outbox.buffered})
                await self.shipper.drain(self.shutdown_timeout_s)
                await self.outbox.close(self.shutdown_timeout_s)
            finally:
                await self.store.database.close()


@contextlib.asynccontextmanager
async def _background(shipper: Shipper) -> AsyncIterator[None]:
    running = asyncio.get_running_loop().create_task(shipper.run(), name="inferlab-usage-shipper")
    try:
        yield
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


def build_metering(settings: Settings, router: ModelRouter, session: aiohttp.ClientSession, *,
                   observer: OutboxObserver | None = None, shipper_observer: ShipperObserver | None = None,
                   hardware: HardwareOf | None = None, pricing: Pricing | None = None,
                   sink: UsageSink | None = None, usage_observer: UsageObserver | None = None) -> Metering:
    """The store's database (``database_url``, else SQLite in the data directory) through an
    engine and a guard of metering's own: a slow batch never makes the rest of the gateway think the
    database is down, and a pool of its own never takes connections authentication needs. The
    shipper checks the schema (migrating with ``auth.auto_migrate``) before its first batch. A
    ``sink`` (ClickHouse) gets every batch the store gets."""
    from inferlab.auth.stack import migrate_or_check
    from inferlab.store import database_url

    config = settings.metering
    url = settings.database_url.get_secret_value() if settings.database_url else None
    database = Database(database_url(settings.data_dir, url), timeout_s=config.store_timeout_s,
                        retry_s=settings.auth.store_retry_s)
    store = SqlUsageStore(database)
    outbox = Outbox(outbox_path(settings), flush_interval_s=config.flush_interval_ms / 1000.0,
                    flush_max_events=config.flush_max_events, max_buffered=config.max_buffered_events,
                    observer=observer)

    async def prepare() -> None:
        await migrate_or_check(store.database, settings.auth.auto_migrate)
        await store.prepare(datetime.now(UTC))

    postgres = database.dialect == "postgresql"
    concurrency = config.ship_concurrency if postgres else 1  # SQLite: one writer, and short transactions
    batch = config.ship_batch_size if postgres else min(config.ship_batch_size, SQLITE_BATCH)
    target = TeeStore(store, sink) if sink is not None else store  # a sink (ClickHouse) gets every batch too
    shipper = Shipper(outbox, target, batch_size=batch, concurrency=concurrency,
                      interval_s=config.ship_interval_s,
                      retry_initial_s=config.retry_initial_s, retry_max_s=config.retry_max_s,
                      retention_s=config.retention_h * 3600.0, prepare=prepare, observer=shipper_observer)
    step = MeterUsage(outbox, ReplicaTokenizers(router, session), tokenize_timeout_s=config.tokenize_timeout_s,
                      acknowledge=config.acknowledge, ack_timeout_s=config.ack_timeout_s, pricing=pricing,
                      observer=usage_observer, **({"hardware": hardware} if hardware is not None else {}))
    return Metering(step, outbox, shipper, store, config.shutdown_timeout_s)
