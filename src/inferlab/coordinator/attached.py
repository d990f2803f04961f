"""An engine another process runs for this one: ``inferlab serve --workers N``'s supervisor owns
the managed llama.cpp processes, and each worker attaches to them.

``EngineHandoff`` is what the supervisor passes to a worker (picklable: port, flavour, health path
and the engine's per-process API key, through the multiprocessing pipe, never argv or the
environment). ``AttachedEngine`` is a ``ManagedEngine`` whose process is someone else's: it does
not start, restart or stop anything, it follows the engine's health instead, so the routes, the
backend and ``/ready`` treat it exactly like an engine of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import aiohttp

from inferlab.coordinator.engine_process import EngineObserver, EngineState, ManagedEngine
from inferlab.coordinator.locate import EngineCommand


@dataclass(frozen=True, slots=True)
class EngineHandoff:
    """One supervisor-owned engine, as a worker reaches it."""

    name: str
    port: int
    command: EngineCommand  # argv kept for the report; only flavour, health_path and api_key are used

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class AttachedEngine(ManagedEngine):
    """Follows a supervisor-owned engine's health every ``interval_s``: ready while it answers; a
    ready engine that stops answering counts as a restart (``inferlab_engine_restarts_total``)."""

    def __init__(self, handoff: EngineHandoff, session: aiohttp.ClientSession, *, observer: EngineObserver,
                 logger: logging.Logger, interval_s: float) -> None:
        super().__init__(handoff.name, lambda _port: handoff.command, session, observer=observer, logger=logger)
        self.port = handoff.port
        self.url = handoff.url
        self._interval_s = interval_s

    @property
    def pid(self) -> int | None:
        return None  # the supervisor's child, not ours

    async def _run_once(self) -> None:
        """Probe until stopped (the base class's restart loop never sees this return)."""
        url = self.url + self.command.health_path
        while not self._stopping:
            healthy = False
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=2), headers=self._auth) as answer:
                    healthy = answer.status == 200
            self._follow(healthy)
            await asyncio.sleep(self._interval_s if healthy else min(self._interval_s, 0.2))

    def _follow(self, healthy: bool) -> None:
        if healthy and not self._ready.is_set():
            self.state = EngineState.READY
            self._ready.set()
            self._observer.engine_up_changed(self.name, True)
        elif not healthy and self._ready.is_set():  # went down: the supervisor restarts it
            self.state = EngineState.RESTARTING
            self.restarts += 1
            self._ready.clear()
            self._observer.engine_up_changed(self.name, False)
            self._observer.engine_restarted(self.name)
        elif not healthy and self.state is EngineState.STOPPED:
            self.state = EngineState.STARTING
            self._observer.engine_up_changed(self.name, False)

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self.state = EngineState.STOPPED
