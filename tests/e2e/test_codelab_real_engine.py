"""CodeLab end to end: a live `inferlab serve` in front of real llama.cpp engines (SmolLM2-135M).

Two models: ``smollm2`` (the embedded GGUF, no FIM tokens: the gateway renders the configured
StarCoder2 template) and ``smollm2-fim``, a copy of the same GGUF whose metadata declares five of
its own special tokens as FIM sentinels (``inferlab.testing.gguf_copy``): the gateway reads them
(the generic GGUF family, preferred) and sends completions with a suffix to llama-server's
``/infill``. The 135M model was never trained for FIM or review: these tests check the plumbing
and the contracts (token ids, schema, lines in the diff), not the quality.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from inferlab.testing.gateway_process import GatewayProcess

pytestmark = pytest.mark.engine
FIM_TOKENS = {"tokenizer.ggml.fim_pre_token_id": 8, "tokenizer.ggml.fim_suf_token_id": 9,
              "tokenizer.ggml.fim_mid_token_id": 10, "tokenizer.ggml.fim_rep_token_id": 3,
              "tokenizer.ggml.fim_sep_token_id": 5}  # <issue_start>, <issue_comment>, <issue_closed>, <repo_name>, <file_sep>
PLANTED = "\n".join([  # the loop now skips the first price
    "diff --git a/shop/cart.py b/shop/cart.py",
    "--- a/shop/cart.py",
    "+++ b/shop/cart.py",
    "@@ -1,9 +1,9 @@",
    " def total(prices, discount):",
    '     """The sum of prices, less a discount between 0 and 1."""',
    "     subtotal = 0",
    "-    for price in prices:",
    "+    for i in range(1, len(prices)):",
    "-        subtotal += price",
    "+        subtotal += prices[i]",
    "     return subtotal * (1 - discount)",
    " ",
    " ",
    "",
])


def post(gateway: GatewayProcess, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(gateway.url + path, data=orjson.dumps(body),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=1100) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="module")
def gateway(llama_server_path: Path, smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    pytest.importorskip("gguf")
    from inferlab.testing.gguf_copy import copy_with_uint32_keys

    fim_gguf = copy_with_uint32_keys(smollm2_gguf, tmp_path_factory.mktemp("fim") / "smollm2-fim.gguf", FIM_TOKENS)
    models = [
        {"name": "smollm2", "backend": "llamacpp", "path": "embedded:smollm2", "context_size": 4096, "parallel": 2,
         "fim_template": "starcoder2", "retry": {"attempt_timeout_s": 900, "max_attempts": 1}},
        {"name": "smollm2-fim", "backend": "llamacpp", "path": str(fim_gguf), "context_size": 2048, "parallel": 2,
         "embeddings": False},
    ]
    gateway = GatewayProcess({"models": models, "engines": {"prefer": "llama-server"},
                              "codelab": {"tiers": {"small": "smollm2-fim", "large": "smollm2"},
                                          # embeddings' quality is tested here, not their latency on a loaded machine
                                          "context": {"embedding_model": "smollm2", "query_embed_timeout_s": 10}},
                              "logging": {"level": "INFO"}}).start()
    yield gateway
    gateway.stop()


def test_a_gguf_that_declares_fim_tokens_is_completed_through_infill(gateway: GatewayProcess) -> None:
    status, headers, raw = post(gateway, "/v1/completions", {
        "model": "smollm2-fim", "prompt": "def add(a, b):\n    return ", "suffix": "\n\nprint(add(1, 2))\n",
        "max_tokens": 8, "temperature": 0})
    assert status == 200, raw
    body = orjson.loads(raw)
    assert body["id"] == "cmpl-" + headers["x-request-id"]  # the /infill answer, translated by the gateway
    assert body["object"] == "text_completion" and isinstance(body["choices"][0]["text"], str)
    assert body["usage"]["prompt_tokens"] > 10 and 0 < body["usage"]["completion_tokens"] <= 8


def test_a_streamed_infill_is_openai_chunks_then_done(gateway: GatewayProcess) -> None:
    status, _, raw = post(gateway, "/v1/completions", {
        "model": "smollm2-fim", "prompt": "x = [", "suffix": "]\n", "max_tokens": 6, "temperature": 0, "stream": True})
    assert status == 200
    events = [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks) and chunks[-1]["choices"][0]["finish_reason"]


def test_code_completions_through_the_rendered_template_and_the_router(gateway: GatewayProcess) -> None:
    status, _, raw = post(gateway, "/v1/code/completions", {
        "language": "python", "filepath": "m.py", "prefix": "def square(x):\n    return ", "suffix": "\n",
        "tier": "large", "max_tokens": 12})
    assert status == 200, raw
    body = orjson.loads(raw)
    assert body["model"] == "smollm2" and body["completion_id"].startswith("code-") and body["routing"]["tier"] == "large"
    status, _, raw = post(gateway, "/v1/code/completions", {"language": "python", "prefix": "total = su", "suffix": "\n",
                                                            "max_tokens": 6})
    assert status == 200 and orjson.loads(raw)["routing"]["tier"] == "small"  # a short single line: the small tier
    status, _, raw = post(gateway, "/v1/code/events", {"type": "accept", "completion_id": body["completion_id"]})
    assert status == 200 and orjson.loads(raw)["acceptance_rate"] == 1.0


@pytest.mark.timeout(1200)
def test_a_review_of_a_planted_bug_is_schema_valid_and_points_into_the_diff(gateway: GatewayProcess) -> None:
    """One comment at most: llama.cpp's grammar-constrained sampling is slow on a loaded 2-core
    machine (below 1 token/s measured while other builds ran), and validity is what is tested."""
    from inferlab.code.diff import parse_diff
    from inferlab.code.review import COMMENTS_SCHEMA

    jsonschema = pytest.importorskip("jsonschema")
    status, _, raw = post(gateway, "/v1/code/review", {"diff": PLANTED, "model": "smollm2", "max_tokens": 160,
                                                       "max_comments": 1})
    assert status == 200, raw
    verdict = orjson.loads(raw)
    assert verdict["object"] == "code.review", verdict
    jsonschema.validate({"comments": verdict["comments"]}, COMMENTS_SCHEMA)
    diff = parse_diff(PLANTED)
    for comment in verdict["comments"]:
        assert diff.has_line(comment["path"], comment["line"]), comment


def test_docs_for_a_function(gateway: GatewayProcess) -> None:
    status, _, raw = post(gateway, "/v1/code/docs", {"language": "python", "code": "def area(r):\n    return 3.14159 * r * r\n",
                                                     "model": "smollm2", "max_tokens": 64})
    assert status == 200, raw
    body = orjson.loads(raw)
    assert body["object"] == "code.docs" and body["content"] and "PEP 257" in body["convention"]


def test_repository_chunks_are_embedded_by_the_served_model(gateway: GatewayProcess, tmp_path: Path) -> None:
    """yarl's pure-Python helpers (a real package's source without its two largest files, _url.py
    and the Cython .pyx, which would triple the embedding time) indexed with SmolLM2's embeddings
    from the gateway's own /v1/embeddings; a completion's context then comes from the fused
    rankings."""
    import shutil
    import subprocess

    yarl = pytest.importorskip("yarl")
    repo = tmp_path / "yarl"
    shutil.copytree(Path(yarl.__file__).parent, repo / "yarl",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.c", "*.pyx", "_url.py"))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "yarl"],
                   check=True)
    status, _, raw = post(gateway, "/v1/code/repositories", {"git_url": repo.as_uri()})
    assert status == 200, raw
    status, _, raw = post(gateway, "/v1/code/completions", {
        "language": "python", "filepath": "app.py",
        "prefix": "from yarl._query import get_str_query\n\nquery = get_str_query(", "suffix": ")\n",
        "git_url": repo.as_uri(), "tier": "large", "max_tokens": 8})
    assert status == 200, raw
    snippets = orjson.loads(raw)["snippets"]
    assert any("embedding" in s["found_by"] for s in snippets) and any(s["filepath"] == "yarl/_query.py" for s in snippets)
