"""The browser hybrid end to end, in real headless Chromium (Debian's, driven by Playwright through
its executable path): a live `inferlab serve` with keys, metering and the browser catalogue, in
front of a real llama-server running SmolLM2-135M; the page imports `@inferlab/browser` as
InferLab serves it.

- local: the page downloads SmolLM2 from InferLab, verifies it, generates with wllama in the page
  (no inference request leaves the page), and its usage lands in the ledger marked local;
- forced fallbacks — device memory too small, WebAssembly switched off in the browser, a model
  whose catalogue hash does not match, the local engine killed mid-stream — answer from the server
  through the same API and output contract, each request recorded once;
- the playground renders a completed answer (screenshot taken and checked).
"""

from __future__ import annotations

import io
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from inferlab.browser.build import SOURCE_CLIENT
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.metering.codec import decode
from inferlab.testing.gateway_process import GatewayProcess, llama_server
from inferlab.testing.needs import require

pytestmark = [pytest.mark.engine, pytest.mark.browser]
CHROMIUM = Path("/usr/bin/chromium")
MODEL = "smollm2-135m"
BAD_HASH = "smollm2-135m-badhash"  # the same file, catalogued under a hash it does not have
PEPPER = "e2e-browser-pepper-0123456789"
QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]

# Runs in the page: one client per page (the model stays loaded), one chat completion streamed,
# optionally killing the local engine after `killAfter` content chunks.
RUN = """
async ({key, model, messages, maxTokens, killAfter, options}) => {
  const { InferLabBrowser } = await import('/browser/client/inferlab-browser.js');
  window.hybrid ??= new InferLabBrowser({ apiKey: key, ...options });
  const client = window.hybrid;
  client.setPolicy(options.policy ?? 'local-first');
  const stream = await client.chat.completions.create({ model, messages, stream: true,
    max_tokens: maxTokens, temperature: 0, stream_options: { include_usage: true } });
  const chunks = [];
  let content = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    if (chunk.choices[0]?.delta?.content && ++content === killAfter) await client.local.kill();
  }
  await client.flushReports();
  return { info: stream.inferlab, chunks };
}
"""


@pytest.fixture(scope="module")
def browser_client() -> Path:
    bundle = SOURCE_CLIENT / "inferlab-browser.js"
    require(bundle.is_file() and (SOURCE_CLIENT / "wllama.wasm").is_file(),
            "the browser client is not built: ./dev setup test (npm ci && npm run build in clients/browser)")
    require(CHROMIUM.is_file(), "Debian's chromium is not installed (./dev setup test installs it)")
    return SOURCE_CLIENT


@pytest.fixture(scope="module")
def engine(llama_server_path: Path, smollm2_gguf: Path) -> Iterator[str]:
    with llama_server(llama_server_path, smollm2_gguf, ctx_size=4096, parallel=2) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(engine: str, browser_client: Path) -> Iterator[GatewayProcess]:
    config = {
        "features": {"auth": True, "browser": True},
        "auth": {"pepper": PEPPER},
        "metering": {"ship_interval_s": 0.1},
        "models": [{"name": MODEL, "backend": "openai", "url": f"{engine}/v1", "engine": "llamacpp"}],
        "browser": {"models": [{"name": MODEL}, {"name": BAD_HASH, "sha256": "0" * 64, "server_model": MODEL}]},
        "logging": {"level": "INFO"},
    }
    process = GatewayProcess(config).start(timeout=120)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def admin(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    root = next(word for line in gateway.logs().splitlines() for word in line.split() if word.startswith("il-"))
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {root}"}, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def key(admin: httpx.Client) -> str:
    user = admin.post("/admin/users", json={"name": "web", "tenant_id": "default"}).json()
    return str(admin.post("/admin/keys", json={"name": "page", "user_id": user["id"]}).json()["key"])


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def chromium(playwright: Any, browser_client: Path) -> Iterator[Any]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    yield browser
    browser.close()


class Page:
    """One page of InferLab's origin, with every request it sends recorded."""

    def __init__(self, browser: Any, gateway: GatewayProcess, *, init_script: str | None = None) -> None:
        self.context = browser.new_context()
        if init_script:
            self.context.add_init_script(init_script)
        self.page = self.context.new_page()
        self.requests: list[tuple[str, str]] = []
        self.page.on("request", lambda request: self.requests.append((request.method, request.url)))
        self.page.goto(gateway.url + "/playground")
        self.page.wait_for_selector("body[data-ready='1']")

    def run(self, key: str, model: str = MODEL, *, max_tokens: int = 6, kill_after: int = 0,
            **options: Any) -> dict[str, Any]:
        arguments = {"key": key, "model": model, "messages": QUESTION, "maxTokens": max_tokens,
                     "killAfter": kill_after, "options": options}
        result: dict[str, Any] = self.page.evaluate(RUN, arguments)
        return result

    def inference_requests(self) -> list[str]:
        return [url for method, url in self.requests if method == "POST" and url.endswith("/v1/chat/completions")]


def events_of(gateway: GatewayProcess, request_id: str, count: int, timeout: float = 20.0) -> list[UsageEvent]:
    """The usage events of one hybrid request (local and server), from the gateway's outbox."""
    deadline = time.monotonic() + timeout
    while True:
        connection = sqlite3.connect(gateway.workdir / "data" / "usage-outbox.db")
        try:
            events = [decode(payload) for (payload,) in connection.execute("SELECT payload FROM usage_outbox")]
        finally:
            connection.close()
        found = [event for event in events if event.request_id == request_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def text_of(result: dict[str, Any]) -> str:
    return "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in result["chunks"] if chunk["choices"])


def check_contract(result: dict[str, Any]) -> None:
    """The same output contract wherever it ran: one id, the asked model, a finish, usage last."""
    chunks = result["chunks"]
    assert {chunk["id"] for chunk in chunks} == {f"chatcmpl-{result['info']['requestId']}"}
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert chunks[-1]["usage"]["completion_tokens"] > 0
    assert text_of(result).strip()


@pytest.fixture(scope="module")
def page(chromium: Any, gateway: GatewayProcess) -> Iterator[Page]:
    opened = Page(chromium, gateway)
    yield opened
    opened.context.close()


def test_the_page_runs_smollm2_itself_and_its_usage_joins_the_ledger(page: Page, gateway: GatewayProcess,
                                                                      key: str, admin: httpx.Client) -> None:
    result = page.run(key)
    info = result["info"]
    assert (info["where"], info["ran"], info["fallback"]) == ("local", "local", None), info
    assert info["decisionMs"] <= 5.0 and info["tokensPerSecond"] > 0
    check_contract(result)
    assert {chunk["model"] for chunk in result["chunks"]} == {MODEL}
    assert page.inference_requests() == []  # generated in the page: nothing reached the server's inference API
    [event] = events_of(gateway, info["requestId"], 1)
    assert (event.token_source, event.replica, event.hardware, event.status) == (
        TokenSource.CLIENT, "local:wllama", "browser", EventStatus.SUCCESS)
    assert event.completion_tokens == result["chunks"][-1]["usage"]["completion_tokens"]
    assert event.prompt_tokens == result["chunks"][-1]["usage"]["prompt_tokens"] > 0
    deadline = time.monotonic() + 20
    while True:  # the usage records (shipped to the store, rolled up): the local line, by replica
        report = admin.get("/admin/usage", params={"group_by": "replica"}).json()
        local = [row for row in report["data"] if row["replica"] == "local:wllama"]
        if local or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert local and local[0]["completion_tokens"] >= event.completion_tokens


def test_server_first_answers_locally_when_the_server_cannot_be_reached(page: Page, gateway: GatewayProcess,
                                                                       key: str) -> None:
    page.page.route("**/v1/chat/completions", lambda route: route.abort("connectionrefused"))
    try:
        result = page.run(key, max_tokens=3, policy="server-first")
    finally:
        page.page.unroute("**/v1/chat/completions")
    info = result["info"]
    assert (info["where"], info["ran"], info["fallback"]) == ("local", "local", "server_unreachable"), info
    check_contract(result)
    [event] = events_of(gateway, info["requestId"], 1)
    assert event.token_source is TokenSource.CLIENT


def test_a_local_generation_killed_mid_stream_is_continued_by_the_server(page: Page, gateway: GatewayProcess,
                                                                         key: str) -> None:
    before = len(page.inference_requests())
    result = page.run(key, max_tokens=6, kill_after=2)
    info = result["info"]
    assert (info["ran"], info["fallback"]) == ("local+server", "local_failed_mid_stream"), info
    check_contract(result)
    assert len(page.inference_requests()) == before + 1
    events = events_of(gateway, info["requestId"], 2)
    local = [e for e in events if e.token_source is TokenSource.CLIENT]
    server = [e for e in events if e.token_source is not TokenSource.CLIENT]
    assert len(local) == 1 and len(server) == 1, events  # each part recorded once
    assert (local[0].status, server[0].status, server[0].replica) == (EventStatus.ERROR, EventStatus.SUCCESS,
                                                                      server[0].replica)
    assert local[0].completion_tokens >= 2 and server[0].completion_tokens > 0


def test_a_model_whose_hash_does_not_match_is_never_run_the_server_answers(page: Page, gateway: GatewayProcess,
                                                                           key: str) -> None:
    result = page.run(key, BAD_HASH, max_tokens=3)
    info = result["info"]
    assert (info["where"], info["ran"], info["fallback"]) == ("server", "server", "hash_mismatch"), info
    check_contract(result)
    assert {chunk["model"] for chunk in result["chunks"]} == {BAD_HASH}  # the name the caller asked for
    [event] = events_of(gateway, info["requestId"], 1)
    assert event.token_source is TokenSource.ENGINE and event.model == MODEL
    # the corrupt copy was never cached: the verified one is the only entry
    cached = page.page.evaluate("async () => (await (await caches.open('inferlab-browser-models')).keys()).length")
    assert cached == 1


def test_too_little_device_memory_goes_to_the_server(chromium: Any, gateway: GatewayProcess, key: str) -> None:
    small = Page(chromium, gateway, init_script="Object.defineProperty(Navigator.prototype, 'deviceMemory', "
                                                "{ get: () => 0.25 })")
    try:
        result = small.run(key, max_tokens=3)
        assert len(small.inference_requests()) == 1
    finally:
        small.context.close()
    info = result["info"]
    assert (info["where"], info["fallback"]) == ("server", "device_memory_too_small"), info
    check_contract(result)
    assert len(events_of(gateway, info["requestId"], 1)) == 1


def test_a_browser_without_webassembly_goes_to_the_server(playwright: Any, gateway: GatewayProcess,
                                                          key: str) -> None:
    # V8 without its JIT (as browsers' hardened modes run it) has no WebAssembly at all
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                         args=["--no-sandbox", "--js-flags=--jitless"])
    try:
        page = Page(browser, gateway)
        assert page.page.evaluate("typeof WebAssembly") == "undefined"
        result = page.run(key, max_tokens=3)
    finally:
        browser.close()
    info = result["info"]
    assert (info["where"], info["fallback"], info["reasons"]) == ("server", "wasm_unavailable", ["wasm_unavailable"])
    check_contract(result)
    [event] = events_of(gateway, info["requestId"], 1)
    assert event.token_source is TokenSource.ENGINE


def test_the_playground_renders_a_completed_answer(page: Page, gateway: GatewayProcess, key: str,
                                                   tmp_path: Path) -> None:
    from PIL import Image

    playground = page.context.new_page()  # the verified model is in this context's cache already
    try:
        playground.set_viewport_size({"width": 1000, "height": 700})
        page = playground
        page.goto(f"{gateway.url}/playground#key={key}&max_tokens=6")
        page.wait_for_selector("body[data-ready='1']")
        page.fill("#prompt", "Name three colours of the rainbow.")
        page.click("#send")
        answer = page.wait_for_selector(".turn.assistant[data-state='done']", timeout=60_000)
        shot = tmp_path / "playground.png"
        page.screenshot(path=str(shot))
        badge = answer.query_selector(".badge")
        assert badge is not None and badge.inner_text() == "local", answer.inner_text()
        assert answer.query_selector(".text").inner_text().strip()  # type: ignore[union-attr]
        assert "tokens/s" in answer.inner_text()
        box = badge.bounding_box()
    finally:
        playground.close()
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    assert image.size == (1000, 700)
    # the rendered badge: its green background is there, where the page put it
    x, y = int(box["x"] + 3), int(box["y"] + box["height"] / 2)
    assert image.getpixel((x, y)) == (0xD5, 0xF5, 0xDD)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text and layout, not a blank page
