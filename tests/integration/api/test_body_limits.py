"""Rejecting a body costs at most what accepting one does: an oversized body (with or without a
Content-Length) and a gzip bomb (1 GiB of zeros in ~1 MB) get an OpenAI-shaped 413 with peak memory
growth under 2 × ``server.max_body_bytes``, measured with tracemalloc while the real server (in this
process) reads them. A compressed body within the cap is inflated and served; bad encodings are 4xx."""

from __future__ import annotations

import asyncio
import os
import struct
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest

from inferlab.config import Settings
from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.gateway_process import GatewayProcess

from .harness import blocking_exchange, head, openai_error, request, running_gateway, serve_process

CAP = 4 * 1024 * 1024
CHAT = "/v1/chat/completions"
PIECE = 64 * 1024
MODEL = "sim-model"


def gzip_bomb(gib: int = 1) -> bytes:
    """A valid gzip stream of ``gib`` GiB of zeros, ~1 MB per GiB, built without deflating a GiB:
    one fully flushed MiB of zeros is a self-contained deflate segment, repeated."""
    zeros = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(1024 * gib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", crc, (gib << 30) & 0xFFFFFFFF)
    return header + segment * (1024 * gib) + deflate.flush() + trailer


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb()


@pytest.fixture
async def gateway() -> AsyncIterator[int]:
    sim = EngineSimulator(SimulatorScript(completion_tokens=3), model=MODEL)
    url = await sim.start()
    settings = Settings(
        server={"max_body_bytes": CAP}, features={"metrics": False, "planning_api": False},
        models=[{"name": MODEL, "backend": "openai", "url": url + "/v1"}],
    )
    async with running_gateway(settings) as port:
        yield port
    await sim.stop()


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    yield
    tracemalloc.stop()


async def send_and_measure(port: int, request_head: bytes, body: bytes) -> tuple[int, bytes, int, float]:
    """Send the request at full speed and read the answer: (status, response body, peak traced
    memory growth in bytes, seconds to the answer)."""
    baseline = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    started = time.monotonic()
    status, answer = await asyncio.to_thread(blocking_exchange, port, request_head, body)
    elapsed = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1] - baseline
    return status, answer, peak, elapsed


def chat_head(*extra: str) -> bytes:
    return head("POST", CHAT, "Content-Type: application/json", *extra)


def chunked(body: bytes) -> bytes:
    """``body`` in HTTP/1.1 chunked framing, 64 KiB a chunk."""
    pieces = (body[i:i + PIECE] for i in range(0, len(body), PIECE))
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def chat_body(content_bytes: int, model: str = MODEL) -> bytes:
    message = {"role": "user", "content": "a" * content_bytes}
    return orjson.dumps({"model": model, "max_tokens": 3, "messages": [message]})


async def test_oversized_body_with_content_length(gateway: int, traced: None) -> None:
    body = chat_body(3 * CAP)
    status, answer, peak, _ = await send_and_measure(gateway, chat_head(f"Content-Length: {len(body)}"), body)
    assert status == 413 and openai_error(answer)["code"] == "payload_too_large"
    assert peak <= 2 * CAP, f"{peak / 2**20:.1f} MiB"


async def test_oversized_chunked_body(gateway: int, traced: None) -> None:
    body = chunked(chat_body(3 * CAP))
    status, answer, peak, _ = await send_and_measure(gateway, chat_head("Transfer-Encoding: chunked"), body)
    assert status == 413 and openai_error(answer)["code"] == "payload_too_large"
    assert peak <= 2 * CAP, f"{peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_gzip_bomb_is_refused_without_inflating_it(
    gateway: int, traced: None, bomb: bytes, framing: str
) -> None:
    if framing == "chunked":
        request_head, body = chat_head("Content-Encoding: gzip", "Transfer-Encoding: chunked"), chunked(bomb)
    else:
        request_head, body = chat_head("Content-Encoding: gzip", f"Content-Length: {len(bomb)}"), bomb
    status, answer, peak, elapsed = await send_and_measure(gateway, request_head, body)
    assert status == 413 and openai_error(answer)["code"] == "payload_too_large"
    assert peak <= 2 * CAP, f"{peak / 2**20:.1f} MiB"
    assert elapsed < 5, elapsed  # inflating the whole GiB would take longer than that


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "deflate-raw"])
async def test_compressed_body_within_the_cap_is_served(gateway: int, encoding: str) -> None:
    body = chat_body(CAP // 16)  # 256 KiB inflated (the simulated engine takes 1 MiB), ~1 KiB on the wire
    wbits = {"gzip": 31, "x-gzip": 31, "deflate": 15, "deflate-raw": -15}[encoding]
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    packed = packer.compress(body) + packer.flush()
    coding = encoding.removesuffix("-raw")
    status, _, answer = await request(
        gateway, chat_head(f"Content-Encoding: {coding}", f"Content-Length: {len(packed)}") + packed
    )
    assert status == 200, answer
    reply = orjson.loads(answer)
    assert reply["model"] == MODEL and reply["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_a_body_just_under_the_cap_is_read(gateway: int, encoding: str) -> None:
    body = chat_body(CAP - 170, model="no-such-model")
    assert CAP - 100 < len(body) <= CAP
    if encoding == "gzip":
        body = zlib.compress(body, wbits=31)
    status, _, answer = await request(
        gateway, chat_head(f"Content-Encoding: {encoding}", "Transfer-Encoding: chunked") + chunked(body)
    )
    assert status == 404 and openai_error(answer)["code"] == "model_not_found"  # read, parsed, routed


async def test_compressed_body_inflating_just_past_the_cap_is_413(gateway: int) -> None:
    body = chat_body(CAP)
    packed = zlib.compress(body, wbits=31)
    status, _, answer = await request(
        gateway, chat_head("Content-Encoding: gzip", f"Content-Length: {len(packed)}") + packed
    )
    assert status == 413 and openai_error(answer)["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("coding", "payload", "expected", "code"),
    [
        ("br", b"\x0b\x02\x80{}\x03", 415, "unsupported_content_encoding"),
        ("gzip, deflate", b"{}", 415, "unsupported_content_encoding"),
        ("gzip", b"this is not gzip at all", 400, "invalid_body"),
        ("gzip", zlib.compress(b'{"model": "sim-model"}', wbits=31)[:-12], 400, "invalid_body"),  # truncated
        ("deflate", zlib.compress(b'{"model": "sim-model"}') + b"more", 400, "invalid_body"),  # trailing data
    ],
)
async def test_bad_encodings_are_refused(
    gateway: int, coding: str, payload: bytes, expected: int, code: str
) -> None:
    status, _, answer = await request(
        gateway, chat_head(f"Content-Encoding: {coding}", f"Content-Length: {len(payload)}") + payload
    )
    assert status == expected, answer
    assert openai_error(answer)["code"] == code


def peak_rss_growth(gateway: GatewayProcess, request_head: bytes, body: bytes) -> tuple[int, bytes, int]:
    """(status, body, growth of the gateway's peak resident memory in bytes) over one request;
    Linux: /proc/<pid>/clear_refs resets the peak (VmHWM) to the current size."""
    assert gateway.process is not None
    pid = gateway.process.pid

    def vm(field: str) -> int:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith(field))

    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")
    before = vm("VmRSS:")
    status, answer = blocking_exchange(gateway.port, request_head, body)
    time.sleep(0.3)  # the server's side of the exchange (lingering on the rest of the body) is done
    return status, answer, vm("VmHWM:") - before


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_inferlab_serve_peak_memory_per_rejected_body(bomb: bytes) -> None:
    """The real ``inferlab serve`` process, memory as the OS sees it (allocator, zlib and transport
    buffers included): each rejected body costs under 2 × the cap (was 14, 23 and 31 MB)."""
    plain = chat_body(3 * CAP)
    requests = {
        "content-length": (chat_head(f"Content-Length: {len(plain)}"), plain),
        "chunked": (chat_head("Transfer-Encoding: chunked"), chunked(plain)),
        "gzip bomb": (chat_head("Content-Encoding: gzip", f"Content-Length: {len(bomb)}"), bomb),
    }
    with serve_process({"server": {"max_body_bytes": CAP}, "features": {"metrics": False}}) as gateway:
        growth = {}
        for name, (request_head, body) in requests.items():
            status, answer, growth[name] = peak_rss_growth(gateway, request_head, body)
            assert status == 413 and openai_error(answer)["code"] == "payload_too_large", name
    shown = {name: f"{grown / 2**20:.1f} MiB" for name, grown in growth.items()}
    assert all(grown <= 2 * CAP for grown in growth.values()), shown
