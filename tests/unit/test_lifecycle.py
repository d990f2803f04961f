"""The lifecycle's stop never hangs on a background task: one that swallows a cancellation is
cancelled again; one that swallows every cancellation is left behind, logged, after the grace."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from inferlab import lifecycle
from inferlab.lifecycle import Lifecycle


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again() -> None:
    stopped = asyncio.Event()

    async def stubborn_once() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # as asyncio.wait_for could before 3.12: lost once
            await asyncio.sleep(3600)
        try:
            await asyncio.sleep(3600)
        finally:
            stopped.set()

    parts = Lifecycle()
    parts.background(stubborn_once)
    started = time.monotonic()
    async with parts.running():
        await asyncio.sleep(0.05)
    assert stopped.is_set() and time.monotonic() - started < 3


async def test_a_task_that_never_stops_is_left_behind_and_logged(monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(lifecycle, "STOP_GRACE_S", 2.0)
    after, released = asyncio.Event(), asyncio.Event()

    async def immortal() -> None:  # until the test releases it
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()

    parts = Lifecycle()
    parts.background(immortal)
    parts.on_stop(lambda: _set(after))  # registered before: stopped after it
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="inferlab"):
        async with parts.running():
            await asyncio.sleep(0.05)
    assert 1.5 < time.monotonic() - started < 4
    assert after.is_set()  # the parts after it still stopped
    assert any("did not stop" in record.getMessage() for record in caplog.records)
    released.set()
    await asyncio.sleep(0.01)


async def _set(event: asyncio.Event) -> None:
    event.set()
