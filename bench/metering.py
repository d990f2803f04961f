"""Usage metering: what it costs the request path, how fast the shipper fills PostgreSQL, and the
outbox against a direct synchronous insert per request — in one run.

1. gateway overhead: ``inferlab serve`` (this tree) with ``features.metering`` off, on, and on
   without the acknowledgement (``metering.acknowledge: false``), in front of the engine simulator;
   latency at concurrency 1 (no stream) and a streamed scenario (16 tokens 5 ms apart, 16 at once).
   Added p50 = on − off. Beside it, in process, one call through the metering step alone (``step``):
   what metering costs a request without the HTTP around it.
2. shipper ingestion: N events in a local outbox, shipped into a fresh PostgreSQL database
   (127.0.0.1:5432) by the shipper — events/s, rollups maintained in the same transactions.
3. the request path's cost of recording one event, C concurrent "requests": buffered
   (``Outbox.append``: journaled and buffered), acknowledged (``append_durably``: journaled), acknowledged
   without the journal (the writer thread's commit to the WAL, the design before it) and a direct
   ``UsageStore.insert_batch([event])`` into PostgreSQL per request — latency p50/p99, events/s.

    python bench/metering.py                 # all three
    python bench/metering.py --scale 0.2     # a quick look
    python bench/metering.py --only ingest   # one part: overhead | step | ingest | record
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from overhead_targets import LOOPBACK, MODEL, Launcher, Pinning, child_env, cpu_seconds, start_simulator

from inferlab.benchmark import BenchmarkConfig, run_benchmark
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.metering.outbox import Outbox
from inferlab.metering.shipper import Shipper
from inferlab.store import Database, upgrade
from inferlab.store.usage import SqlUsageStore

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
VARIANTS = {"metering off": {"features": {"metering": False}},
            "metering on": {},
            "metering on, no ack": {"metering": {"acknowledge": False}}}


TIERS = ("free", "pro", "enterprise")


def event(i: int, start: datetime, *, spread: bool = False) -> UsageEvent:
    """The ``i``-th event of a stream of traffic, 1 ms apart. Typical: tenants skewed (a few of 200
    send most), 1-3 keys each, the tier theirs, 4 models × 2 replicas, 2 % errors. ``spread``:
    every event of a batch its own rollup row (the worst case for the rollups)."""
    if spread:
        tenant, key, model, replica, status = i % 50, i % 1000, i % 4, i % 8, EventStatus.SUCCESS
    else:
        rank = ((i * 2654435761) % 2**32) / 2**32  # a deterministic pseudo-random in [0, 1)
        tenant = int(200 * rank**3)  # skewed: a few tenants send most of the traffic
        key, model = tenant * 3 + i % (1 + tenant % 3), int(4 * rank**2) % 4
        replica = model * 2 + i % 2
        status = EventStatus.ERROR if i % 50 == 0 else EventStatus.SUCCESS
    return UsageEvent(
        id=f"{uuid.uuid4().hex[:16]}{i:010x}", time=start + timedelta(milliseconds=i), tenant=f"tenant-{tenant}",
        user=f"user-{key}", key=f"key-{key}", tier=TIERS[tenant % 3], route="/v1/chat/completions",
        model=f"model-{model}", model_version=None, replica=f"replica-{replica}", hardware="L4",
        prompt_tokens=200 + i % 300, completion_tokens=50 + i % 400, cached_tokens=i % 100,
        token_source=TokenSource.ENGINE, queue_ms=0.0, ttft_ms=12.5, duration_ms=840.125, status=status,
        http_status=200 if status is EventStatus.SUCCESS else 502, price=Decimal("0.0001234567"),
        hardware_cost=Decimal("0.0000456789"), request_id=f"rq-{i}",
    )


# -- 1. gateway overhead ----------------------------------------------------------------------------

def overhead(scale: float, logs: Path, stack: ExitStack) -> dict[str, Any]:
    launcher = Launcher(stack, logs, Pinning())
    sim = start_simulator(launcher, 9011)
    targets: dict[str, str] = {}
    pids: dict[str, int] = {}
    for port, (name, changes) in enumerate(VARIANTS.items(), start=8111):
        data = logs / f"data-{port}"
        data.mkdir()
        config = {"data_dir": str(data), "models": [{"name": MODEL, "backend": "openai",
                                                     "url": f"http://{LOOPBACK}:9011/v1"}], **changes}
        path = logs / f"gateway-{port}.yaml"
        path.write_text(yaml.safe_dump(config))
        argv = [sys.executable, "-m", "inferlab", "serve", "--config", str(path), "--host", LOOPBACK, "--port", str(port)]
        proc = launcher.start(name, argv, child_env(ROOT / "src"), port=port, health="/health", wait_s=60, cpu=None)
        if proc is not None:
            targets[name] = f"http://{LOOPBACK}:{port}/v1"
            pids[name] = proc.pid
    results: dict[str, Any] = {}
    scenarios = (("latency", False, 1, 500, 0.0), ("stream", True, 16, 1000, 0.005))
    for scenario, stream, concurrency, prompts, delay in scenarios:
        asyncio.run(_script(sim.base_url.removesuffix("/v1"), delay))
        results[scenario] = {}
        for rounds in range(2):  # interleaved twice: a busy machine's drift hits every target alike
            for name, url in targets.items():
                config = BenchmarkConfig(base_url=url, model=MODEL, num_prompts=max(20, int(prompts * scale)),
                                         concurrency=concurrency, stream=stream, max_tokens=16, temperature=0.7,
                                         prompt_words=32, timeout=60, warmup=concurrency * 2,
                                         label=f"{scenario}/{name}", percentiles=(50.0, 99.0), seed=rounds)
                before = cpu_seconds(pids[name])
                row = asyncio.run(run_benchmark(config)).to_dict()
                # the gateway process's CPU (every thread: the outbox's too) per request — steadier than
                # latency on a shared machine
                row["gateway_cpu_us_per_request"] = (cpu_seconds(pids[name]) - before) * 1e6 / (
                    config.num_prompts + config.warmup)
                results[scenario].setdefault(name, []).append(row)
                ttft = f", TTFT p50 {row['p50_ttft_ms']:.2f} ms" if stream else ""
                print(f"  {scenario:<8} {name:<20} p50 {row['p50_e2el_ms']:.2f} ms p99 {row['p99_e2el_ms']:.2f} ms"
                      f"{ttft}, {row['gateway_cpu_us_per_request']:.0f} CPU µs/req, "
                      f"{row['completed']}/{row['num_prompts']} ok", flush=True)
    return results


async def _script(sim_url: str, delay: float) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.post(
            f"{sim_url}/_sim/script", json={"token_delay_s": delay, "completion_tokens": 16}) as answer:
        answer.raise_for_status()


# -- 1b. the step's own cost, in process --------------------------------------------------------------

async def step_cost(scale: float, logs: Path) -> dict[str, Any]:
    """One call through ``MeterUsage`` and the routing-less rest of a chain: the event made, kept in
    the buffer (no acknowledgement) or acknowledged by the writer, the call ended — per call."""
    from inferlab.metering.step import MeterUsage
    from inferlab.pipeline import SUCCESS, Call, Chain, Reply
    from inferlab.types import Caller, InferenceResponse, RequestKind, Usage

    outbox = Outbox(logs / "step.db")
    await outbox.start()
    answer = InferenceResponse(body={"choices": []}, usage=Usage(12, 34))

    async def engine(call: Call, call_next: Any) -> Reply:
        call.usage.engine_reported(12, 34)
        call.replicas.append("replica-0")
        return Reply(response=answer)

    results: dict[str, Any] = {}
    calls = max(2000, int(20_000 * scale))
    handoff = Outbox(logs / "step-handoff.db", journal=False)
    await handoff.start()
    for label, acknowledge, steps, box in (
            ("no metering", False, False, outbox), ("metering, buffered", False, True, outbox),
            ("metering, acknowledged", True, True, outbox),
            ("metering, acknowledged by the writer thread (no journal)", True, True, handoff)):
        meter = MeterUsage(box, {}, acknowledge=acknowledge)
        chain = Chain([meter, engine] if steps else [engine])
        latencies = []
        for i in range(calls):
            call = Call(request_id=f"r{i}", kind=RequestKind.CHAT, route="/v1/chat/completions", model="m",
                        body={}, caller=Caller())
            began = time.perf_counter()
            await chain(call)
            await call.finish()
            await call.end(SUCCESS)
            latencies.append(time.perf_counter() - began)
        latencies.sort()
        results[label] = {"p50_us": latencies[len(latencies) // 2] * 1e6,
                          "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6}
        print(f"  step {label:<56} p50 {results[label]['p50_us']:7.1f} µs  p99 {results[label]['p99_us']:8.1f} µs",
              flush=True)
    await outbox.close(30)
    await handoff.close(30)
    return results


# -- 2. shipper ingestion ---------------------------------------------------------------------------

async def _fresh_database() -> tuple[str, Database]:
    name = f"bench_metering_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG_SERVER}/test")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    database = Database(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", timeout_s=60.0)
    await upgrade(database)
    return name, database


async def _drop(name: str, database: Database) -> None:
    await database.close()
    admin = await asyncpg.connect(f"{PG_SERVER}/test")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def ingest(scale: float, logs: Path) -> dict[str, Any]:
    count = max(10_000, int(200_000 * scale))
    start = datetime.now(UTC).replace(microsecond=0)
    results: dict[str, Any] = {"events": count}
    for label, batch, concurrency, spread in (
            ("typical, batch 1000, 1 at once", 1000, 1, False), ("typical, batch 1000, 2 at once", 1000, 2, False),
            ("typical, batch 5000, 2 at once", 5000, 2, False),
            ("each event its own rollup row, batch 1000, 2 at once", 1000, 2, True)):
        name, database = await _fresh_database()
        store = SqlUsageStore(database)
        await store.prepare(start)
        outbox = Outbox(logs / f"ingest-{len(results)}.db", flush_interval_s=0.05, flush_max_events=10_000)
        await outbox.start()
        for i in range(count):
            outbox.append(event(i, start, spread=spread))
        await outbox.flush(120)
        shipper = Shipper(outbox, store, batch_size=batch, concurrency=concurrency)
        began, cpu = time.perf_counter(), time.process_time()
        await shipper.ship_available()
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        stored = await store.count()
        rollup_rows = len(await store.rollups("hour"))
        await outbox.close(30)
        await _drop(name, database)
        results[label] = {"seconds": seconds, "events_per_s": count / seconds, "stored": stored,
                          "hourly_rollup_rows": rollup_rows, "shipper_cpu_us_per_event": cpu / count * 1e6}
        print(f"  ingest {label:<52} {count / seconds:9,.0f} events/s ({stored} stored, {rollup_rows} hourly rows, "
              f"shipper CPU {cpu / count * 1e6:.1f} µs/event)", flush=True)
    return results


# -- 3. recording one event on the request path -----------------------------------------------------

async def record(scale: float, logs: Path) -> dict[str, Any]:
    per_mode = max(2000, int(20_000 * scale))
    concurrency = 32
    start = datetime.now(UTC)
    name, database = await _fresh_database()
    store = SqlUsageStore(database)
    await store.prepare(start)
    outbox = Outbox(logs / "record.db")
    await outbox.start()
    handoff = Outbox(logs / "record-handoff.db", journal=False)
    await handoff.start()
    counter = iter(range(10**9))

    async def buffered(e: UsageEvent) -> None:
        outbox.append(e)

    async def acknowledged(e: UsageEvent) -> None:
        await outbox.append_durably(e, 5.0)

    async def handed_off(e: UsageEvent) -> None:
        await handoff.append_durably(e, 5.0)

    async def direct(e: UsageEvent) -> None:
        await store.insert_batch([e])

    results: dict[str, Any] = {"concurrency": concurrency}
    for mode, record_one in (("outbox, buffered", buffered), ("outbox, acknowledged", acknowledged),
                             ("outbox, acknowledged by the writer (no journal)", handed_off),
                             ("direct insert into PostgreSQL", direct)):
        count = per_mode if mode != "direct insert into PostgreSQL" else max(1000, per_mode // 4)
        row = await _timed(record_one, count, concurrency, lambda: event(next(counter), start))
        results[mode] = row
        print(f"  record {mode:<48} p50 {row['p50_us']:8.1f} µs  p99 {row['p99_us']:9.1f} µs  "
              f"{row['events_per_s']:10,.0f} events/s", flush=True)
    await outbox.close(30)
    await handoff.close(30)
    await _drop(name, database)
    return results


async def _timed(record_one: Any, count: int, concurrency: int, make: Any) -> dict[str, float]:
    latencies: list[float] = []

    async def worker(share: int) -> None:
        for _ in range(share):
            e = make()
            began = time.perf_counter()
            await record_one(e)
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker(count // concurrency) for _ in range(concurrency)))
    seconds = time.perf_counter() - began
    latencies.sort()
    return {"events": len(latencies), "events_per_s": len(latencies) / seconds,
            "p50_us": latencies[len(latencies) // 2] * 1e6, "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
            "mean_us": statistics.fmean(latencies) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", choices=["overhead", "step", "ingest", "record"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "scale": args.scale,
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()},
    }
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="metering-bench-")))
        if args.only in (None, "step"):
            report["step"] = asyncio.run(step_cost(args.scale, logs))
        if args.only in (None, "record"):
            report["record"] = asyncio.run(record(args.scale, logs))
        if args.only in (None, "ingest"):
            report["ingest"] = asyncio.run(ingest(args.scale, logs))
        if args.only in (None, "overhead"):
            report["overhead"] = overhead(args.scale, logs, stack)
    report["load_average_after"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"metering-{datetime.now(UTC).strftime('%Y-%m-%d-%H%M%S')}.json"
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
