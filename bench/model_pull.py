"""Pull throughput: ``inferlab models pull`` from a local OCI registry against the same bytes from a
plain HTTP file server — what the registry protocol (manifest, token, blob GET, redirect) costs.

Both servers run as processes of their own on loopback: the Go distribution registry (Debian's
``docker-registry``, as the tests run it), open and with token auth (anonymous pulls of a public
repository, a token from InferLab's test token service), and an aiohttp file server (sendfile)
for the URL pull. Each pull goes into a fresh store: download, sha256 over every byte, move into
the blobs; the median of ``--runs`` is reported with the spread, and the client process's own CPU
time (all threads), which a loaded machine disturbs less than the wall time.

    python bench/model_pull.py                  # 256 MiB, 5 runs each
    python bench/model_pull.py --size-mb 64 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.modelstore import Manifest, ModelStore
from inferlab.modelstore.oci import pull_oci
from inferlab.modelstore.pull import pull
from inferlab.testing.gateway_process import free_port
from inferlab.testing.oci_registry import RegistryProcess, push_model, push_token, registry_binary
from inferlab.testing.oci_token import TokenService

FILE_SERVER = """
import sys
from aiohttp import web
path, port = sys.argv[1], int(sys.argv[2])
app = web.Application()
app.router.add_get("/model.gguf", lambda request: web.FileResponse(path))
web.run_app(app, host="127.0.0.1", port=port, print=None)
"""


async def _timed(work: Awaitable[Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process — the client's own cost, all threads)."""
    started, cpu = time.perf_counter(), time.process_time()
    await work
    return time.perf_counter() - started, time.process_time() - cpu


async def _wait_http(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.head(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


async def main(size_mb: int, runs: int) -> dict[str, Any]:
    binary = registry_binary()
    if binary is None:
        raise SystemExit("docker-registry is not installed (./dev setup test)")
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp:
        work = Path(tmp)
        blob = work / "model.gguf"
        blob.write_bytes(b"GGUF" + os.urandom(size_mb * 1024 * 1024 - 4))
        token = await TokenService(users={"bench": "bench"}).start()
        open_registry = await RegistryProcess(work / "open").start(binary)
        token_registry = await RegistryProcess(work / "token", token=token).start(binary)
        port = free_port()
        server = await asyncio.create_subprocess_exec(sys.executable, "-c", FILE_SERVER, str(blob), str(port))
        try:
            url = f"http://127.0.0.1:{port}/model.gguf"
            await _wait_http(url)
            async with aiohttp.ClientSession() as session:
                pushed = await push_model(session, open_registry.url, "library/bench", "v1", blob)
                await push_model(session, token_registry.url, "public/bench", "v1", blob,
                                 authorization=await push_token(token, "bench", "public/bench"))
            pulls: dict[str, Callable[[ModelStore], Awaitable[Manifest]]] = {
                "plain HTTP (URL pull)": lambda s: pull(s, url, "bench:v1", digest=pushed.model_digest),
                "OCI registry, open": lambda s: pull_oci(s, f"{open_registry.host}/library/bench:v1"),
                "OCI registry, token auth": lambda s: pull_oci(s, f"{token_registry.host}/public/bench:v1"),
            }
            timings: dict[str, list[tuple[float, float]]] = {label: [] for label in pulls}
            for run in range(runs):
                for index, (label, action) in enumerate(pulls.items()):
                    store = ModelStore(work / f"store-{run}-{index}")
                    timings[label].append(await _timed(action(store)))
                    await asyncio.to_thread(shutil.rmtree, store.root)
        finally:
            server.terminate()
            await server.wait()
            await open_registry.close()
            await token_registry.close()
            await token.close()
    size = size_mb * 1024 * 1024
    rows = {}
    for label, pairs in timings.items():
        walls, cpus = [wall for wall, _ in pairs], [cpu for _, cpu in pairs]
        rows[label] = {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
                       "median_MiB_s": size / statistics.median(walls) / 2**20,
                       "client_cpu_s": statistics.median(cpus), "walls": walls, "cpus": cpus}
    return {"when": datetime.now(UTC).isoformat(timespec="seconds"), "size_MiB": size_mb, "runs": runs,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
            "results": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    report = asyncio.run(main(args.size_mb, args.runs))
    out = ROOT / "bench" / "results" / f"model-pull-{datetime.now(UTC):%Y-%m-%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{report['size_MiB']} MiB, {report['runs']} runs, {report['machine']}")
    for label, row in report["results"].items():
        print(f"{label:28s} median {row['median_s']:.2f} s ({row['median_MiB_s']:.0f} MiB/s), "
              f"min {row['min_s']:.2f} s, max {row['max_s']:.2f} s, client CPU {row['client_cpu_s']:.2f} s")
    print(f"-> {out.relative_to(ROOT)}")
