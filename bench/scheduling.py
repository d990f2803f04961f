"""Scheduling under overload: one pool at 2x its capacity, three tiers, the schedulers side by side.

Offered load (open loop, Poisson, the same seeded schedule for every run): enterprise 10 %, pro 30 %,
free 60 % of the requests, spread over 2 / 5 / 10 tenants (tier weights 16 / 4 / 1, classes high /
normal / low). Every request is streamed; prompts of 100-300 words, 16-48 tokens generated
(``--words``, ``--tokens``).

Runs, each a real ``inferlab serve`` process (auth on) in front of the same engine:

    calibrate      closed loop at 2x the pool's slots: the pool's capacity in requests/s
    unloaded       enterprise alone at its rate: its TTFT baseline
    tiered         the default policy: class -> fair share across tenants -> deadline, aging
    tiered+burst   the same, with the pool's limit ``--burst`` above the engine's knee and the
                   lower classes leaving those slots free (headroom): the top class may run a few
                   more sequences than the knee, slowing every sequence a little instead of waiting
    vtc            plain Virtual Token Counter fair queuing across tenants (no classes)
    fifo           arrival order

Engines: ``--engine sim`` (the engine simulator as a process: prefill 0.2 ms per prompt token,
20 ms per generated token, compute-bound past ``--slots`` running sequences — each token then slows
in proportion, so more concurrency adds no throughput — and at most ``--slots`` + ``--burst``) or
``--engine llama`` (a real llama-server with SmolLM2-135M, ``--slots`` + ``--burst`` parallel
sequences). Every policy but tiered+burst keeps the pool at ``--slots`` requests at once.

Reported per run: per tier TTFT p50/p95 of served requests, served / refused; pro SLO attainment
(offered pro requests served with TTFT within the pro tier's target); free's served tokens over its
weighted max-min fair share of what the pool served; throughput; and the goals. Demand and service
are both in the engine's tokens: each request's demand is its expected prompt and completion
tokens, from a fit over the served requests of every run (``DemandModel``).

With ``--rounds N`` every run is repeated N times (``--seconds`` each, a new arrival schedule per
round, the runs' order rotated each round) and the figures pool the rounds: on a machine whose
speed drifts, every policy then sees the same drift.

    python bench/scheduling.py [--engine sim|llama] [--seconds 60] [--slots 8] [--overload 2] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.config import Settings
from inferlab.services import build_admin_services
from inferlab.testing.gateway_process import GatewayProcess, free_port, http_get

MODEL = "bench-model"
TIERS = {  # share of the offered requests, tenants, weight, class, TTFT target
    "enterprise": (0.10, 2, 16.0, "high", 1000),
    "pro": (0.30, 5, 4.0, "normal", 2000),
    "free": (0.60, 10, 1.0, "low", 5000),
}
WORDS = ["time", "person", "year", "way", "day", "thing", "world", "life", "hand", "part", "child", "place"]


@dataclass
class Arrival:
    at: float
    tier: str
    tenant: str
    words: int
    max_tokens: int


@dataclass
class Outcome:
    tier: str
    tenant: str
    at: float
    status: int = 0
    ttft_s: float | None = None
    ended_s: float | None = None
    tokens: int = 0  # prompt + completion, as the engine counted them
    prompt_tokens: int = 0
    completion_tokens: int = 0
    words: int = 0  # of its prompt
    max_tokens: int = 0


@dataclass(frozen=True)
class DemandModel:
    """What a request asks of the engine, in the engine's tokens, served or not.

    Served requests show their prompt tokens (the chat template's own plus the words') and how
    much of ``max_tokens`` the model generated before stopping; a least-squares line over the
    former and the ratio of the latter give every request's expected tokens, refused ones
    included. Demand and service must be in one unit: the fair share divides what the pool served
    (engine tokens) among the tenants' demands.
    """

    template_tokens: float  # prompt tokens of an empty prompt
    tokens_per_word: float
    completion_ratio: float  # generated over max_tokens

    @classmethod
    def fit(cls, outcomes: list[Outcome]) -> DemandModel:
        served = [o for o in outcomes if o.status == 200 and o.prompt_tokens and o.max_tokens]
        if len(served) < 2:
            return cls(0.0, 1.0, 1.0)
        n = len(served)
        mean_w = sum(o.words for o in served) / n
        mean_p = sum(o.prompt_tokens for o in served) / n
        var = sum((o.words - mean_w) ** 2 for o in served)
        slope = sum((o.words - mean_w) * (o.prompt_tokens - mean_p) for o in served) / var if var else 1.0
        ratio = sum(o.completion_tokens for o in served) / sum(o.max_tokens for o in served)
        return cls(mean_p - slope * mean_w, slope, ratio)

    def tokens(self, outcome: Outcome) -> float:
        return self.template_tokens + self.tokens_per_word * outcome.words + self.completion_ratio * outcome.max_tokens


WORD_RANGE = (100, 300)  # prompt words, and tokens generated (--words, --tokens)
TOKEN_RANGE = (16, 48)


def schedule(rate: float, seconds: float, seed: int = 5) -> list[Arrival]:
    rng = random.Random(seed)
    arrivals, now = [], 0.0
    tiers = list(TIERS)
    weights = [TIERS[t][0] for t in tiers]
    while True:
        now += rng.expovariate(rate)
        if now >= seconds:
            return arrivals
        tier = rng.choices(tiers, weights)[0]
        tenant = f"{tier}-{rng.randrange(TIERS[tier][1])}"
        arrivals.append(Arrival(now, tier, tenant, rng.randint(*WORD_RANGE), rng.randint(*TOKEN_RANGE)))


def tier_config(free_deadline_ms: float) -> list[dict[str, Any]]:
    tiers = []
    for name, (_, _, weight, priority, ttft_ms) in TIERS.items():
        tier: dict[str, Any] = {"name": name, "priority": priority, "weight": weight,
                                "slo": {"ttft_p95_ms": ttft_ms, "availability": 0.99}}
        if name == "free":
            tier["deadline_ms"] = free_deadline_ms
        tiers.append(tier)
    return tiers


def gateway_config(engine_url: str, engine: str, slots: int, queue: dict[str, Any], data_dir: str) -> dict[str, Any]:
    return {
        "data_dir": data_dir,
        "features": {"auth": True, "metrics": True},
        "auth": {"pepper": "bench-pepper-0123456789abcdef", "bootstrap": False},
        "tenants": {"tiers": tier_config(10_000)},
        "models": [{"name": MODEL, "backend": "openai", "url": engine_url + "/v1", "engine": engine,
                    "max_concurrency_per_replica": slots, "queue": queue,
                    "retry": {"timeout_floor_s": 120}}],
        "logging": {"level": "WARNING"},
    }


async def make_keys(config: dict[str, Any]) -> dict[str, str]:
    """A tenant on its tier for every tenant of the schedule, and a key each."""
    admin = build_admin_services(Settings(**config))
    keys: dict[str, str] = {}
    async with admin.auth.running():
        for tier, (_, count, *_rest) in TIERS.items():
            for index in range(count):
                tenant = f"{tier}-{index}"
                await admin.tenant_admin.create(LOCAL_OPERATOR, tenant, tier=tier)
                user = await admin.auth.admin.create_user(LOCAL_OPERATOR, f"u-{tenant}", "member", tenant)
                created = await admin.auth.admin.create_key(LOCAL_OPERATOR, name="bench", user_id=user.id,
                                                            scopes=Scopes(frozenset({"inference"})))
                keys[tenant] = created.token
    return keys


async def one(session: aiohttp.ClientSession, url: str, key: str, arrival: Arrival, origin: float) -> Outcome:
    outcome = Outcome(arrival.tier, arrival.tenant, arrival.at, words=arrival.words, max_tokens=arrival.max_tokens)
    words = " ".join(WORDS[(i * 7 + arrival.words) % len(WORDS)] for i in range(arrival.words))
    body = {"model": MODEL, "stream": True, "stream_options": {"include_usage": True}, "max_tokens": arrival.max_tokens,
            "messages": [{"role": "user", "content": words}]}
    started = time.perf_counter()
    try:
        async with session.post(url, data=orjson.dumps(body), headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/json"}) as response:
            outcome.status = response.status
            if response.status != 200:
                await response.read()
                return outcome
            async for line in response.content:
                if outcome.ttft_s is None and line.startswith(b"data: {") and b'"content"' in line:
                    outcome.ttft_s = time.perf_counter() - started
                elif b'"usage"' in line and line.startswith(b"data: {"):
                    usage = orjson.loads(line[6:]).get("usage") or {}
                    outcome.tokens = int(usage.get("total_tokens") or 0)
                    outcome.prompt_tokens = int(usage.get("prompt_tokens") or 0)
                    outcome.completion_tokens = int(usage.get("completion_tokens") or 0)
    except (aiohttp.ClientError, TimeoutError):
        outcome.status = -1
    outcome.ended_s = time.perf_counter() - origin
    return outcome


async def drive(url: str, keys: dict[str, str], arrivals: list[Arrival]) -> list[Outcome]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=300)) as session:
        origin = time.perf_counter()
        tasks = []
        for arrival in arrivals:
            delay = arrival.at - (time.perf_counter() - origin)
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, url, keys[arrival.tenant], arrival, origin)))
        return list(await asyncio.gather(*tasks))


async def calibrate(url: str, keys: dict[str, str], clients: int, seconds: float) -> float:
    """Requests per second the pool completes in a closed loop at ``clients`` concurrency."""
    rng = random.Random(9)
    done: list[float] = []
    stop = time.perf_counter() + seconds

    async def loop(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < stop:
            arrival = Arrival(0, "enterprise", "enterprise-0", rng.randint(*WORD_RANGE), rng.randint(*TOKEN_RANGE))
            outcome = await one(session, url, keys["enterprise-0"], arrival, 0.0)
            if outcome.status == 200:
                done.append(time.perf_counter())

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(loop(session) for _ in range(clients)))
    steady = [t for t in done if stop - seconds * 0.75 < t <= stop]  # past the ramp, before the loops stop
    return len(steady) / (seconds * 0.75)


def percentile(values: list[float], p: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else None


def fair_shares(demand: dict[str, float], weight: dict[str, float], capacity: float) -> dict[str, float]:
    """Weighted max-min fair allocation of ``capacity`` (water-filling over the demands)."""
    share = dict.fromkeys(demand, 0.0)
    active = {t for t in demand if demand[t] > 0}
    left = capacity
    while active and left > 1e-9:
        total_weight = sum(weight[t] for t in active)
        step = {t: left * weight[t] / total_weight for t in active}
        satisfied = {t for t in active if share[t] + step[t] >= demand[t]}
        if not satisfied:
            for t in active:
                share[t] += step[t]
            break
        for t in satisfied:
            left -= demand[t] - share[t]
            share[t] = demand[t]
        active -= satisfied
    return share


def summarise(name: str, rounds: list[list[Outcome]], seconds: float, demand_model: DemandModel) -> dict[str, Any]:
    """One policy's figures over every round (each ``seconds`` long; the first 10 % of each is warm-up)."""
    warm = seconds * 0.1
    window = [o for outcomes in rounds for o in outcomes if warm <= o.at < seconds]
    span = (seconds - warm) * len(rounds)
    result: dict[str, Any] = {"run": name, "tiers": {}}
    served_tokens: dict[str, float] = {}
    demand: dict[str, float] = {}
    for o in window:
        demand[o.tenant] = demand.get(o.tenant, 0.0) + demand_model.tokens(o) / span
        if o.status == 200 and o.ended_s is not None:
            served_tokens[o.tenant] = served_tokens.get(o.tenant, 0.0) + o.tokens / span
    for tier, (_, count, _, _, target_ms) in TIERS.items():
        mine = [o for o in window if o.tier == tier]
        ok = [o for o in mine if o.status == 200 and o.ttft_s is not None]
        ttfts = [o.ttft_s for o in ok if o.ttft_s is not None]
        within = sum(1 for t in ttfts if t * 1000 <= target_ms)
        p50, p95 = percentile(ttfts, 50), percentile(ttfts, 95)
        result["tiers"][tier] = {
            "offered": len(mine), "served": len(ok), "refused": sum(1 for o in mine if o.status in (429, 503)),
            "errors": sum(1 for o in mine if o.status not in (200, 429, 503)),
            "ttft_p50_ms": p50 * 1000 if p50 is not None else None, "ttft_p95_ms": p95 * 1000 if p95 is not None else None,
            "ttft_max_ms": max(ttfts) * 1000 if ttfts else None,
            "slo_attainment": within / len(mine) if mine else None,
            "tenants_served": len({o.tenant for o in ok}), "tenants": count,
        }
    total = sum(served_tokens.values())
    weights = {t: TIERS[t.rsplit("-", 1)[0]][2] for t in demand}
    fair = fair_shares(demand, weights, total)
    free_fair = sum(v for t, v in fair.items() if t.startswith("free-"))
    free_served = sum(v for t, v in served_tokens.items() if t.startswith("free-"))
    done_in_window = [o for outcomes in rounds for o in outcomes
                      if o.status == 200 and o.ended_s is not None and warm <= o.ended_s < seconds]
    result.update({
        "throughput_tokens_s": sum(o.tokens for o in done_in_window) / span,
        "throughput_requests_s": len(done_in_window) / span,
        "free_fair_share_tokens_s": free_fair, "free_served_tokens_s": free_served,
        "free_share_of_fair": free_served / free_fair if free_fair else None,
    })
    return result


async def run_gateway(engine_url: str, engine: str, slots: int, queue: dict[str, Any],
                      arrivals: list[Arrival] | None, calibrate_s: float = 0.0) -> list[Outcome] | float:
    """The outcomes of ``arrivals`` through a fresh gateway (or, without arrivals, its capacity in req/s)."""
    gateway = GatewayProcess({}, env={"PYTHONPATH": str(ROOT / "src")})
    config = gateway_config(engine_url, engine, slots, queue, str(gateway.workdir / "data"))  # serve's --data-dir
    gateway.config_path.write_text(json.dumps(config))
    keys = await make_keys(config)
    await asyncio.to_thread(gateway.start, timeout=120)
    try:
        url = gateway.url + "/v1/chat/completions"
        if arrivals is None:
            return await calibrate(url, keys, 2 * slots, calibrate_s)
        return await drive(url, keys, arrivals)
    finally:
        await asyncio.to_thread(gateway.stop)


def start_engine(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    if args.engine == "sim":
        argv = [sys.executable, "-m", "inferlab.testing.simulator", "--port", str(port), "--model", MODEL,
                "--tokens", "48", "--token-delay-ms", str(args.token_delay_ms), "--prefill-token-delay-ms", "0.2",
                "--saturation-concurrency", str(args.slots), "--max-concurrency", str(args.slots + args.burst)]
        kind = "vllm"
    else:
        from inferlab.config import EngineSettings
        from inferlab.coordinator.locate import find_llama_server, resolve_model_path

        server = find_llama_server(EngineSettings())
        assert server is not None, "llama-server is not built: inferlab engines build"
        argv = [str(server), "--model", str(resolve_model_path("embedded:smollm2")), "--alias", MODEL,
                "--host", "127.0.0.1", "--port", str(port), "--parallel", str(args.slots + args.burst),
                "--ctx-size", str(1024 * (args.slots + args.burst)), "--no-webui", "--threads", "2"]
        kind = "llamacpp"
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if http_get(url + "/health", timeout=1)[0] == 200:
                return process, url, kind
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("engine not ready")


def queue_settings(policy: str, slots: int, burst: int = 0, aging_share: float = 0.03) -> dict[str, Any]:
    queue: dict[str, Any] = {"policy": policy, "max_depth": 4 * slots, "max_wait_s": 20, "aging_s": 5,
                             "aging_share": aging_share}
    if burst:
        queue["classes"] = {"normal": {"headroom": burst}, "low": {"headroom": burst}}
    return queue


def goals(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    unloaded = runs["unloaded"]["tiers"]["enterprise"]["ttft_p95_ms"]
    fifo = runs["fifo"]["throughput_tokens_s"]
    found = {}
    for name in ("tiered", "tiered+burst", "vtc", "fifo"):
        run = runs[name]
        tiers = run["tiers"]
        ent = tiers["enterprise"]["ttft_p95_ms"]
        found[name] = {
            "enterprise_ttft_p95_vs_unloaded": ent / unloaded if ent and unloaded else None,
            "pro_slo_attainment": tiers["pro"]["slo_attainment"],
            "free_share_of_fair": run["free_share_of_fair"],
            "free_tenants_served": f"{tiers['free']['tenants_served']}/{tiers['free']['tenants']}",
            "throughput_vs_fifo": run["throughput_tokens_s"] / fifo if fifo else None,
        }
    return found


def table(runs: dict[str, dict[str, Any]]) -> str:
    lines = ["| run | tier | offered | served | refused | TTFT p50 ms | TTFT p95 ms | SLO attainment |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, run in runs.items():
        for tier, row in run.get("tiers", {}).items():
            if not row["offered"]:
                continue
            p50 = f"{row['ttft_p50_ms']:.0f}" if row["ttft_p50_ms"] is not None else "—"
            p95 = f"{row['ttft_p95_ms']:.0f}" if row["ttft_p95_ms"] is not None else "—"
            lines.append(f"| {name} | {tier} | {row['offered']} | {row['served']} | {row['refused']} | {p50} | {p95} | "
                         f"{row['slo_attainment']:.0%} |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["sim", "llama"], default="sim")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--overload", type=float, default=2.0)
    parser.add_argument("--burst", type=int, default=4, help="tiered+burst: slots above --slots for the top class")
    parser.add_argument("--aging-share", type=float, default=0.03, help="tiered: share of dispatches aged waiters may take")
    parser.add_argument("--token-delay-ms", type=float, default=20.0, help="sim: per generated token")
    parser.add_argument("--calibrate-s", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=1, help="repeat every run, in a rotating order")
    parser.add_argument("--capacity", type=float, default=0.0, help="requests/s the pool serves (skip calibrating)")
    parser.add_argument("--words", default="100-300", help="prompt words, a range")
    parser.add_argument("--tokens", default="16-48", help="tokens generated, a range")
    args = parser.parse_args()
    global WORD_RANGE, TOKEN_RANGE  # noqa: PLW0603 - a script's options
    WORD_RANGE = tuple(int(x) for x in args.words.split("-"))  # type: ignore[assignment]
    TOKEN_RANGE = tuple(int(x) for x in args.tokens.split("-"))  # type: ignore[assignment]
    process, engine_url, kind = start_engine(args)
    runs: dict[str, dict[str, Any]] = {}
    try:
        capacity = args.capacity or float(await run_gateway(engine_url, kind, args.slots,
                                                            queue_settings("fifo", args.slots), None, args.calibrate_s))
        rate = args.overload * capacity
        print(f"capacity {capacity:.2f} req/s; offered {rate:.2f} req/s", flush=True)
        plan = [("unloaded", "tiered", 0, True), ("tiered", "tiered", 0, False),
                ("tiered+burst", "tiered", args.burst, False), ("vtc", "vtc", 0, False), ("fifo", "fifo", 0, False)]
        rounds: dict[str, list[list[Outcome]]] = {name: [] for name, *_ in plan}
        for index in range(args.rounds):  # rounds rotate the order, so a drifting machine weighs on all alike
            arrivals = schedule(rate, args.seconds, seed=5 + index)
            for name, policy, burst, alone in plan[index % len(plan):] + plan[:index % len(plan)]:
                load = [a for a in arrivals if a.tier == "enterprise"] if alone else arrivals
                outcomes = await run_gateway(engine_url, kind, args.slots + burst,
                                             queue_settings(policy, args.slots, burst, args.aging_share), load)
                assert isinstance(outcomes, list)
                rounds[name].append(outcomes)
                print(f"round {index + 1}: {name} done", flush=True)
        demand_model = DemandModel.fit([o for per_run in rounds.values() for outcomes in per_run for o in outcomes])
        print(f"demand model: {demand_model}", flush=True)
        for name, *_ in plan:
            runs[name] = summarise(name, rounds[name], args.seconds, demand_model)
            print(json.dumps(runs[name]), flush=True)
    finally:
        process.terminate()
        process.wait(30)
    report = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "engine": args.engine, "slots": args.slots,
        "burst": args.burst, "aging_share": args.aging_share, "words": args.words, "tokens": args.tokens,
        "seconds": args.seconds, "rounds": args.rounds, "overload": args.overload, "capacity_rps": capacity, "offered_rps": rate,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
        "python": platform.python_version(), "demand_model": asdict(demand_model), "runs": runs, "goals": goals(runs),
    }
    out = ROOT / "bench" / "results" / f"scheduling-{args.engine}-{time.strftime('%Y-%m-%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(table(runs))
    print(json.dumps(report["goals"], indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    asyncio.run(main())
