"""``metering:``: the usage events' durable pipeline (``features.metering``).

Every call that reaches the request chain leaves one usage event. The request path appends it to
an in-process buffer; a writer thread commits the buffer to a local outbox (SQLite, WAL mode, in
the data directory) and fsyncs it at most every ``flush_interval_ms`` or ``flush_max_events``; a
shipper copies the outbox to the store's ``usage_events`` idempotently.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from inferlab.config.base import StrictModel


class MeteringSettings(StrictModel):
    outbox_path: Path | None = Field(None, description="the outbox's SQLite file; default <data_dir>/usage-outbox.db")
    flush_interval_ms: float = Field(
        50.0, gt=0, le=10_000, description="fsync the outbox at most this often: the power-loss window")
    flush_max_events: int = Field(1000, ge=1, description="...or as soon as this many events are not fsynced")
    acknowledge: bool = Field(
        True, description="a successful answer's last bytes follow its event into the outbox's journal (so a "
                          "killed gateway never loses the event of an answer its client saw end); they wait for "
                          "the outbox's commit only when the journal refuses writes")
    ack_timeout_s: float = Field(
        1.0, gt=0, description="longest such wait (a journal refusing writes); then the answer ends anyway")
    max_buffered_events: int = Field(
        1_000_000, ge=1000, description="events waiting for the outbox's writer; beyond, new ones are dropped (counted)")
    tokenize_timeout_s: float = Field(
        1.0, gt=0, description="counting tokens with the engine's tokenizer (no usage from the engine); "
                               "then the body-size estimate, marked token_source=estimate")
    ship_batch_size: int = Field(
        5000, ge=1, le=20_000, description="events per insert into the store (SQLite: at most 1000)")
    ship_concurrency: int = Field(2, ge=1, le=16, description="batches the shipper inserts at once")
    ship_interval_s: float = Field(0.5, gt=0, description="the shipper looks for new events this often when idle")
    store_timeout_s: float = Field(
        5.0, gt=0, description="longest insert of a batch into the store (metering's own connection pool)")
    retry_initial_s: float = Field(0.5, gt=0, description="the shipper's first backoff while the store is down")
    retry_max_s: float = Field(30.0, gt=0, description="its longest backoff (doubling up to this)")
    retention_h: float = Field(24.0, ge=0, description="shipped events are kept in the outbox this long")
    shutdown_timeout_s: float = Field(
        5.0, ge=0, description="at shutdown, the shipper's last attempt to empty the outbox takes at most this "
                               "(then closing the store: at most store_timeout_s more while the database hangs)")
