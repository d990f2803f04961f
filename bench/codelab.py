"""CodeLab's costs and retrieval quality.

1. Indexing: the Python sources of installed packages (not written for this) committed to a git
   repository, indexed the way ``POST /v1/code/repositories`` does (clone, tree-sitter chunks,
   BM25, symbol table; no embeddings) — lines per minute, and the chunk count (≥ 5,000).
2. Retrieval: hit@1 / hit@5 on held-out packages — at every call site of a function or class
   defined in exactly one other file, is the defining chunk found? Two cursors: just after
   ``name(`` (the symbol at the cursor), and at the start of that line (not typed yet).
3. Latency added by CodeLab: ``/v1/code/completions`` through the in-process gateway against that
   5,000-chunk index, minus the same engine answering the final FIM prompt directly (the engine
   simulator, so the engine's own time is constant and tiny); p50 / p95 over ``--requests``. The
   in-process cost of retrieval + prompt building alone is reported too.

    python bench/codelab.py [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import aiohttp
from aiohttp.test_utils import TestServer

from inferlab.app import SERVICES, create_app
from inferlab.code.fim import fim_template
from inferlab.code.repo_index import RepoIndex, cursor_query, cursor_symbol
from inferlab.code.repositories import RepoIndexes
from inferlab.code.retrieval_eval import cursor_cases, hit_rank
from inferlab.config import load_settings
from inferlab.testing import EngineSimulator, SimulatorScript

INDEXED = ("rich", "alembic", "pygments")  # together > 5,000 chunks
HELD_OUT = ("click", "jwt", "attr", "typer", "yaml", "yarl", "rich", "alembic")


def _source(package: str) -> Path:
    return Path(importlib.import_module(package).__file__ or "").parent


def make_repo(target: Path, packages: tuple[str, ...]) -> int:
    for package in packages:
        shutil.copytree(_source(package), target / package, ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.pyc"))
    subprocess.run(["git", "init", "-q", str(target)], check=True)
    subprocess.run(["git", "-C", str(target), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(target), "-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-qm", "src"],
                   check=True)
    return sum(len(p.read_text(errors="replace").splitlines()) for p in target.rglob("*.py"))


async def indexing(repo: Path, lines: int, root: Path) -> dict[str, float]:
    indexes = RepoIndexes(root)
    started = time.perf_counter()
    report = await indexes.index("bench", repo.as_uri())
    seconds = time.perf_counter() - started
    return {"lines": lines, "files": report.files, "chunks": report.chunks, "seconds": round(seconds, 2),
            "lines_per_minute": round(lines / seconds * 60)}


def retrieval() -> dict[str, object]:
    per_package: dict[str, dict[str, float]] = {}
    totals = {True: [0, 0, 0], False: [0, 0, 0]}
    for package in HELD_OUT:
        root = _source(package)
        files = {str(p.relative_to(root)): p.read_text(errors="replace") for p in root.rglob("*.py")}
        index = RepoIndex(package)
        index.put_files(files)
        row: dict[str, float] = {"chunks": index.chunk_count}
        for typed in (True, False):
            cases = cursor_cases(index, files, typed=typed)
            ranks = [hit_rank(index, case, 5) for case in cases]
            n = len(cases)
            if not n:
                continue
            tag = "typed" if typed else "untyped"
            row[f"{tag}_cases"] = n
            row[f"{tag}_hit@1"] = round(sum(r == 1 for r in ranks) / n, 3)
            row[f"{tag}_hit@5"] = round(sum(r is not None for r in ranks) / n, 3)
            totals[typed][0] += n
            totals[typed][1] += sum(r == 1 for r in ranks)
            totals[typed][2] += sum(r is not None for r in ranks)
        per_package[package] = row
    overall = {("typed" if t else "untyped"): {"cases": v[0], "hit@1": round(v[1] / v[0], 3), "hit@5": round(v[2] / v[0], 3)}
               for t, v in totals.items()}
    return {"per_package": per_package, "overall": overall}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


async def latency(repo: Path, data_dir: Path, requests: int) -> dict[str, object]:
    async with EngineSimulator(SimulatorScript(completion_tokens=8)) as sim:
        settings = load_settings(overrides={
            "data_dir": str(data_dir),
            "models": [{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1", "fim_template": "qwen2.5-coder"}],
            "logging": {"level": "WARNING"},
        })
        server = TestServer(await create_app(settings))
        await server.start_server()
        try:
            code = server.app[SERVICES].code
            assert code is not None
            await code.repos.index("default", repo.as_uri())
            index = code.repos.get("default", repo.as_uri())
            assert index is not None
            files = {p: (repo / p).read_text(errors="replace") for p in index.paths if p.startswith("rich/")}
            cases = cursor_cases(index, files, per_file=3, limit=requests)
            gateway, direct, local = [], [], []
            template = fim_template("qwen2.5-coder")
            async with aiohttp.ClientSession() as session:
                for case in cases:
                    body = {"language": "python", "filepath": case.path, "prefix": case.prefix[-4000:],
                            "suffix": case.suffix[:1000], "git_url": repo.as_uri(), "max_tokens": 8}
                    started = time.perf_counter()
                    async with session.post(server.make_url("/v1/code/completions"), json=body) as response:
                        await response.read()
                    gateway.append(time.perf_counter() - started)
                    engine_body = dict(sim.last_request or {})
                    started = time.perf_counter()
                    async with session.post(f"{sim.base_url}/v1/completions", json=engine_body) as response:
                        await response.read()
                    direct.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    hits = index.search(cursor_query(case.prefix, case.suffix), exclude_path=case.path,
                                        symbol=cursor_symbol(case.prefix))
                    template.render_with_context(case.prefix, case.suffix, [], path=case.path)
                    local.append(time.perf_counter() - started)
                    del hits
            added = [g - d for g, d in zip(gateway, direct, strict=True)]
            return {"index_chunks": index.chunk_count, "requests": len(cases),
                    "gateway_ms": {"p50": _pct(gateway, 0.5), "p95": _pct(gateway, 0.95)},
                    "engine_direct_ms": {"p50": _pct(direct, 0.5), "p95": _pct(direct, 0.95)},
                    "added_ms": {"p50": _pct(added, 0.5), "p95": _pct(added, 0.95)},
                    "retrieval_and_prompt_ms": {"p50": _pct(local, 0.5), "p95": _pct(local, 0.95)}}
        finally:
            await server.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="codelab-bench-") as tmp:
        work = Path(tmp)
        lines = make_repo(work / "repo", INDEXED)
        result = {"indexing": await indexing(work / "repo", lines, work / "index"),
                  "retrieval": retrieval(),
                  "latency": await latency(work / "repo", work / "data", args.requests)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
