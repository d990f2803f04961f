"""The SDK's POST retries against a live gateway that de-duplicates by ``Idempotency-Key``: a proxy
between them loses the answer to a create after the gateway handled it (``TcpProxy.
lose_next_answer``); the SDK repeats the POST with the same key and gets the first answer back,
replayed — exactly one resource exists. An inference POST is not repeated after a lost answer."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
from inferlab_client import APIConnectionError, CallEvent, InferLab, RetryPolicy

from inferlab.testing.tcp_proxy import TcpProxy

from .harness import Live

QUICK = RetryPolicy(max_retries=2, initial_delay=0.05, max_delay=0.1)
CHAT = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.fixture
async def proxy(live: Live) -> TcpProxy:
    where = urlsplit(live.url)
    assert where.hostname is not None and where.port is not None
    tcp = TcpProxy(where.hostname, where.port)
    await tcp.start()
    return tcp


def create_through(proxy_url: str, live: Live) -> tuple[dict[str, object], list[CallEvent], list[str]]:
    events: list[CallEvent] = []
    with InferLab(proxy_url, live.root, retry=QUICK, observer=events.append) as client:
        user = client.admin.create_user({"name": "exactly-once"})
    with InferLab(live.url, live.root) as direct:
        names = [u["name"] for u in direct.admin.iter_users()]
    return user, events, names


async def test_a_create_whose_answer_was_lost_runs_once(live: Live, proxy: TcpProxy) -> None:
    proxy.lose_next_answer()
    try:
        user, events, names = await asyncio.to_thread(create_through, f"http://127.0.0.1:{proxy.port}", live)
    finally:
        await proxy.stop()
    assert proxy.lost == 1  # the first attempt reached the gateway; its answer was dropped
    assert [(e.status, e.attempts) for e in events] == [(201, 2)]
    assert user["name"] == "exactly-once"
    assert names.count("exactly-once") == 1  # the retry was answered from the first attempt


def chat_through(proxy_url: str, live: Live) -> list[CallEvent]:
    events: list[CallEvent] = []
    client = InferLab(proxy_url, live.root, retry=QUICK, observer=events.append)
    with client, pytest.raises(APIConnectionError):
        client.request("POST", "/v1/chat/completions", body=CHAT)
    return events


async def test_an_inference_post_is_not_repeated_after_a_lost_answer(live: Live, proxy: TcpProxy) -> None:
    proxy.lose_next_answer()
    try:
        events = await asyncio.to_thread(chat_through, f"http://127.0.0.1:{proxy.port}", live)
    finally:
        await proxy.stop()
    assert proxy.lost == 1 and [(e.status, e.attempts) for e in events] == [(None, 1)]
