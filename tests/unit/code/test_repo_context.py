"""Repository context end to end through the gateway (the engine simulator answers; the prompt it
received is what is checked): a real repository not written for this test — PyYAML's source, as
installed in this environment, committed to a fresh git repository — is indexed per tenant,
completions at cursors that call functions and classes defined in other files get those
definitions in their FIM prompt, and a commit that changes a definition is re-indexed (only the
changed file) before the next completion sees it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from inferlab.app import SERVICES, create_app
from inferlab.code.chunking import Chunker
from inferlab.code.repo_index import RepoIndex
from inferlab.code.retrieval_eval import cursor_cases, hit_rank
from inferlab.config import load_settings
from inferlab.testing import EngineSimulator

yaml = pytest.importorskip("yaml")
MODEL = "sim-model"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    source = Path(yaml.__file__).parent
    target = tmp_path / "pyyaml"
    shutil.copytree(source, target / "yaml", ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.pyc"))
    subprocess.run(["git", "init", "-q", str(target)], check=True)
    git(target, "add", "-A")
    git(target, "commit", "-qm", "PyYAML as installed")
    return target


@pytest.fixture
async def server(sim: EngineSimulator, tmp_path: Path) -> AsyncIterator[TestServer]:
    settings = load_settings(overrides={
        "data_dir": str(tmp_path / "data"),
        "models": [{"name": MODEL, "backend": "openai", "url": sim.base_url + "/v1", "fim_template": "starcoder2"}],
        "codelab": {"context": {"budget_tokens": 3000}},
    })
    server = TestServer(await create_app(settings))
    await server.start_server()
    yield server
    await server.close()


async def post(server: TestServer, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(server.make_url(path), json=body) as response:
        return response.status, await response.json()


def test_the_real_repository_is_a_few_thousand_lines(repo: Path) -> None:
    lines = sum(len(p.read_text().splitlines()) for p in (repo / "yaml").glob("*.py"))
    assert lines > 3000


async def test_definitions_from_other_files_are_in_the_prompt_and_follow_commits(
        server: TestServer, sim: EngineSimulator, repo: Path) -> None:
    url = repo.as_uri()
    status, report = await post(server, "/v1/code/repositories", {"git_url": url})
    assert status == 200 and report["full"] and report["chunks"] > 100
    index = server.app[SERVICES].code.repos.get("default", url)  # type: ignore[union-attr]
    assert index is not None
    files = {p: (repo / p).read_text() for p in index.paths}
    cases = [c for c in cursor_cases(index, files, per_file=1) if c.path.startswith("yaml/")][:6]
    assert len(cases) >= 4
    for case in cases:
        status, body = await post(server, "/v1/code/completions", {
            "language": "python", "filepath": case.path, "prefix": case.prefix, "suffix": case.suffix[:400],
            "git_url": url})
        assert status == 200, body
        prompt = sim.last_request["prompt"]  # type: ignore[index]
        definition = next(c for c in index.chunks_of(case.defined_in) if case.symbol in {s.rsplit(".", 1)[-1] for s in c.symbols})
        assert f"<file_sep>{case.defined_in}\n{definition.text}" in prompt, case.symbol
        assert f"<file_sep>{case.path}\n" not in prompt.split("<fim_prefix>")[0]  # never the file being edited
        assert any(s["filepath"] == case.defined_in for s in body["snippets"])

    # a commit changes a definition: only that file is re-indexed, and the next prompt has the new text
    case = cases[0]
    defining = repo / case.defined_in
    text = defining.read_text()
    marker = f"def {case.symbol}(" if f"def {case.symbol}(" in text else f"class {case.symbol}"
    at = text.index("\n", text.index(marker)) + 1  # a comment line inside the definition
    defining.write_text(text[:at] + f"    # changed by the test: {case.symbol} v2\n" + text[at:])
    git(repo, "commit", "-qam", "change a definition")
    status, report = await post(server, "/v1/code/repositories", {"git_url": url})
    assert status == 200 and not report["full"] and report["reindexed_files"] == 1
    await post(server, "/v1/code/completions", {"language": "python", "filepath": case.path, "prefix": case.prefix,
                                                 "suffix": case.suffix[:400], "git_url": url})
    assert f"# changed by the test: {case.symbol} v2" in sim.last_request["prompt"]  # type: ignore[index]


async def test_indexes_are_per_tenant_and_local_only(server: TestServer, repo: Path) -> None:
    await post(server, "/v1/code/repositories", {"git_url": repo.as_uri()})
    repos = server.app[SERVICES].code.repos  # type: ignore[union-attr]
    assert repos.get("default", repo.as_uri()) is not None and repos.get("another-tenant", repo.as_uri()) is None
    status, body = await post(server, "/v1/code/repositories", {"git_url": "https://example.invalid/x.git"})
    assert status == 400 and body["error"]["param"] == "git_url"


def test_retrieval_finds_the_definition_at_the_cursor_in_held_out_packages() -> None:
    """hit@5 over the call sites of a real package the index was not tuned on (click)."""
    click = pytest.importorskip("click")
    root = Path(click.__file__).parent
    files = {str(p.relative_to(root)): p.read_text() for p in root.glob("*.py")}
    index = RepoIndex("click", Chunker())
    index.put_files(files)
    cases = cursor_cases(index, files)
    ranks = [hit_rank(index, case, 5) for case in cases]
    assert len(cases) >= 20 and sum(r is not None for r in ranks) / len(cases) >= 0.8


async def test_embeddings_come_from_the_gateways_own_embeddings_route(sim: EngineSimulator, repo: Path,
                                                                      tmp_path: Path) -> None:
    """With an embedding model configured, chunks and queries are embedded through the chain (so
    the tenant's limits and metering apply), and the embedding ranking joins the fusion."""
    settings = load_settings(overrides={
        "data_dir": str(tmp_path / "emb"),
        "models": [{"name": MODEL, "backend": "openai", "url": sim.base_url + "/v1", "fim_template": "starcoder2"}],
        "codelab": {"context": {"embedding_model": MODEL}},
    })
    server = TestServer(await create_app(settings))
    await server.start_server()
    try:
        status, report = await post(server, "/v1/code/repositories", {"git_url": repo.as_uri()})
        assert status == 200 and report["chunks"] > 100
        index = server.app[SERVICES].code.repos.get("default", repo.as_uri())  # type: ignore[union-attr]
        assert index is not None and index.embedded
        status, body = await post(server, "/v1/code/completions", {
            "language": "python", "filepath": "yaml/__init__.py", "prefix": "def safe(stream):\n    return load(",
            "suffix": ")\n", "git_url": repo.as_uri()})
        assert status == 200 and any("embedding" in s["found_by"] for s in body["snippets"])
        assert sim.last_request is not None and "prompt" in sim.last_request
    finally:
        await server.close()
