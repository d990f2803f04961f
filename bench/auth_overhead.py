"""Authentication overhead with a warm key cache (target: ≤ 0.1 ms p50 added per request).

Three measurements, in-process, loopback only:

  authenticate   AuthService.authenticate() with a warm cache (parse, dict lookup, HMAC, compare)
  middleware     the auth middleware around a trivial handler vs the bare handler (mocked requests)
  http           GET /v1/models and POST /v1/chat/completions through the aiohttp test server,
                 auth on vs auth off, against the engine simulator (sequential requests)

    python bench/auth_overhead.py            # full counts
    python bench/auth_overhead.py --scale 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from inferlab.app import SERVICES, create_app
from inferlab.auth import ALL_SCOPES, LOCAL_OPERATOR
from inferlab.config import Settings
from inferlab.testing import EngineSimulator


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(name: str, samples_ns: list[float]) -> str:
    us = [s / 1000 for s in samples_ns]
    return f"| {name:<44} | {pct(us, 0.5):8.2f} | {pct(us, 0.99):8.2f} | {statistics.fmean(us):8.2f} | {len(us):>7} |"


async def timed(n: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(min(200, n)):  # warm-up
        await call()
    samples = []
    for _ in range(n):
        started = time.perf_counter_ns()
        await call()
        samples.append(time.perf_counter_ns() - started)
    return samples


def settings(tmp: Path, sim_url: str, auth: bool) -> Settings:
    return Settings(data_dir=tmp, features={"auth": auth, "metrics": True},
                    auth={"pepper": "bench", "bootstrap": False, "key_cache_ttl_s": 60},
                    models=[{"name": "sim-model", "backend": "openai", "url": f"{sim_url}/v1"}])


async def main(scale: float) -> None:
    n_fast, n_http = int(200_000 * scale), int(3_000 * scale)
    lines = ["| measurement | p50 µs | p99 µs | mean µs | n |", "|---|---|---|---|---|"]
    async with EngineSimulator() as sim:
        assert sim.base_url is not None
        with tempfile.TemporaryDirectory() as tmp_on, tempfile.TemporaryDirectory() as tmp_off:
            app_on = await create_app(settings(Path(tmp_on), sim.base_url, True))
            app_off = await create_app(settings(Path(tmp_off), sim.base_url, False))
            async with TestClient(TestServer(app_on)) as on, TestClient(TestServer(app_off)) as off:
                stack = app_on[SERVICES].auth
                assert stack is not None
                user = await stack.admin.create_user(LOCAL_OPERATOR, "bench", "platform-admin")
                key = (await stack.admin.create_key(LOCAL_OPERATOR, name="bench", user_id=user.id, scopes=ALL_SCOPES)).token

                lines.append(row("authenticate() warm cache", await timed(n_fast, lambda: stack.service.authenticate(key))))

                async def handler(request: web.Request) -> web.StreamResponse:
                    return web.Response()

                request = make_mocked_request("GET", "/v1/models", headers={"Authorization": f"Bearer {key}"},
                                              app=app_on)
                # resolve the route like the server would, so the policy lookup is the real one
                request._match_info = await app_on.router.resolve(request)
                bare = await timed(n_fast, lambda: handler(request))
                wrapped = await timed(n_fast, lambda: stack.middleware(request, handler))
                lines.append(row("handler alone (mocked request)", bare))
                lines.append(row("auth middleware + handler (mocked request)", wrapped))

                headers = {"Authorization": f"Bearer {key}"}
                chat = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}

                async def get(client: TestClient[Any, Any], h: dict[str, str]) -> None:
                    async with client.get("/v1/models", headers=h) as response:
                        await response.read()

                async def post(client: TestClient[Any, Any], h: dict[str, str]) -> None:
                    async with client.post("/v1/chat/completions", json=chat, headers=h) as response:
                        await response.read()

                results: dict[str, list[float]] = {}
                for _ in range(3):  # interleave to spread noise evenly
                    for name, fn, client, h in (("GET /v1/models auth off", get, off, {}),
                                                ("GET /v1/models auth on", get, on, headers),
                                                ("POST chat auth off", post, off, {}),
                                                ("POST chat auth on", post, on, headers)):
                        timings = await timed(n_http // 3, lambda fn=fn, client=client, h=h: fn(client, h))
                        results.setdefault(name, []).extend(timings)
                for name, samples in results.items():
                    lines.append(row(name, samples))
    print("\n".join(lines))
    p50 = {name: pct(samples, 0.5) / 1000 for name, samples in results.items()}
    print()
    print(f"middleware added p50: {(pct(wrapped, 0.5) - pct(bare, 0.5)) / 1000:.2f} µs")
    print(f"http added p50: GET {p50['GET /v1/models auth on'] - p50['GET /v1/models auth off']:.1f} µs, "
          f"chat {p50['POST chat auth on'] - p50['POST chat auth off']:.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    asyncio.run(main(parser.parse_args().scale))
