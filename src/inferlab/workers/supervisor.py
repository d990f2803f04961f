"""``inferlab serve --workers N``: one supervisor process, N gateway workers on one port.

The supervisor owns what must be one per host: the managed llama.cpp engines (started, restarted
and stopped here, as ``serve`` does alone) and the pepper file. It then spawns N worker processes
(multiprocessing's *spawn*: a fresh interpreter, nothing inherited but what is passed); each is a
whole gateway (``server.serve``) accepting on the one listening socket the supervisor opened and
handed down (an idle worker accepts first; a worker that dies leaves queued connections to its
siblings, which SO_REUSEPORT's per-socket queues would reset), and each attaches to the
supervisor's engines (``EngineHandoff``: port, flavour and per-engine API key, through
multiprocessing's pipe). State that must be shared lives in
Redis and PostgreSQL (``plan.multi_worker_problems`` refuses a configuration where it would not).

A worker that dies is started again (with backoff) while the others serve; one that dies before it
ever listened stops everything (its error would only repeat). SIGTERM/SIGINT: each worker drains
(``server.drain_timeout_s``), then the engines stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from typing import Any

from inferlab.config import Settings
from inferlab.coordinator.attached import EngineHandoff
from inferlab.coordinator.engine_process import ManagedEngine
from inferlab.server import ABORT_GRACE_S
from inferlab.workers.plan import worker_settings

RESTART_DELAY_S = 1.0  # a worker that served, then died: started again this long after


def run_worker(settings: Settings, index: int, handoffs: dict[str, EngineHandoff], listening: Any,
               sock: socket.socket) -> None:
    """A worker process's entry point: one gateway on the shared port until SIGTERM."""
    from inferlab.logs import configure_logging
    from inferlab.server import serve

    logger = configure_logging(settings.logging.level, settings.logging.json_format)
    logger.info("worker starting", extra={"worker": index})

    def announce(_: object) -> None:
        listening.put(index)

    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(settings, logger, announce, attached=handoffs, sock=sock))
    else:
        uvloop.run(serve(settings, logger, announce, attached=handoffs, sock=sock))


def managed_models(settings: Settings) -> list[Any]:
    return [m for m in settings.models if m.backend == "llamacpp" and not m.url and not m.urls]


@dataclass
class _Worker:
    index: int
    process: SpawnProcess
    exited: asyncio.Future[int]
    listened: bool = False


@dataclass
class Supervisor:
    """Runs the engines and the workers until told to stop; ``announce`` once every worker listens."""

    settings: Settings
    logger: logging.Logger
    announce: Callable[[list[ManagedEngine]], None] | None = None
    _workers: dict[int, _Worker] = field(default_factory=dict)
    _stopping: bool = False

    async def run(self) -> None:
        settings, sock = _listen(self.settings)
        if settings.features.auth:  # created once here, read by every worker
            from inferlab.auth.pepper import load_pepper

            load_pepper(settings.auth, settings.data_dir)
        from inferlab.coordinator.replicas import build_replicas
        from inferlab.services import engine_client, http_session

        session = http_session(settings.upstream)
        client = engine_client(settings.upstream)
        try:
            replicas = build_replicas(managed_models(settings), settings.engines, session, client=client,
                                      max_line_bytes=settings.upstream.max_stream_line_bytes, logger=self.logger)
            for engine in replicas.engines:
                engine.start()
            handoffs = {e.name: EngineHandoff(e.name, e.port, e.command) for e in replicas.engines}
            try:
                await self._serve(settings, handoffs, replicas.engines, sock)
            finally:
                for engine in replicas.engines:
                    await engine.stop()
        finally:
            await client.close()
            await session.close()
            sock.close()
        self.logger.info("stopped")

    async def _serve(self, settings: Settings, handoffs: dict[str, EngineHandoff], engines: list[ManagedEngine],
                     sock: socket.socket) -> None:
        context = multiprocessing.get_context("spawn")
        listening = context.SimpleQueue()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        failed: asyncio.Future[str] = loop.create_future()

        def spawn(index: int) -> None:
            process = context.Process(target=run_worker, name=f"inferlab-worker-{index}", daemon=False,
                                      args=(worker_settings(settings, index), index, handoffs, listening, sock))
            process.start()
            worker = _Worker(index, process, loop.create_future())
            self._workers[index] = worker

            def reaped() -> None:
                loop.remove_reader(process.sentinel)
                process.join()
                worker.exited.set_result(process.exitcode or 0)
                if self._stopping:
                    return
                if not worker.listened and not failed.done():
                    failed.set_result(f"worker {index} exited with {process.exitcode} before it listened")
                    return
                self.logger.warning("worker exited, starting it again", extra={
                    "worker": index, "exit_code": process.exitcode, "restart_in_s": RESTART_DELAY_S})
                loop.call_later(RESTART_DELAY_S, lambda: None if self._stopping else spawn(index))

            loop.add_reader(process.sentinel, reaped)

        for index in range(settings.server.workers):
            spawn(index)
        announced = asyncio.create_task(self._await_listening(listening, settings, engines))
        stopped = asyncio.create_task(stop.wait())
        try:
            waiters: list[asyncio.Future[Any]] = [stopped, failed]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._stopping = True
            await self._stop_workers(settings)
            listening.put(None)  # ends the reader thread
            with contextlib.suppress(asyncio.CancelledError):
                announced.cancel()
                await announced
            stopped.cancel()
        if failed.done():
            raise SystemExit(f"error: {failed.result()} (its log above says why)")

    async def _await_listening(self, listening: Any, settings: Settings, engines: list[ManagedEngine]) -> None:
        """Marks workers listening as they report it; announces once all of them are."""
        announced = False
        while True:
            index = await asyncio.to_thread(listening.get)
            if index is None:
                return
            self._workers[index].listened = True
            if not announced and all(w.listened for w in self._workers.values()):
                announced = True
                self.logger.info("listening", extra={"host": settings.server.host, "port": settings.server.port,
                                                     "workers": len(self._workers)})
                if self.announce is not None:
                    self.announce(engines)

    async def _stop_workers(self, settings: Settings) -> None:
        """SIGTERM to every worker (each drains), SIGKILL to one that outlives its drain."""
        alive = [w for w in self._workers.values() if not w.exited.done()]
        self.logger.info("stopping workers", extra={"workers": len(alive)})
        for worker in alive:
            if worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.terminate()
        grace = settings.server.drain_timeout_s + 2 * ABORT_GRACE_S
        _, late = await asyncio.wait([w.exited for w in alive], timeout=grace) if alive else (set(), set())
        for worker in alive:
            if not worker.exited.done():
                self.logger.warning("worker did not drain in time, killing it", extra={"worker": worker.index})
                worker.process.kill()
        if late:
            await asyncio.wait(late)


def _listen(settings: Settings) -> tuple[Settings, socket.socket]:
    """The workers' one listening socket (port 0: any free one, then the settings say which)."""
    host, port = settings.server.host, settings.server.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host.strip("[]"), port), family=family, backlog=1024)
    except OSError as exc:
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    server = settings.server.model_copy(update={"port": int(sock.getsockname()[1])})
    return settings.model_copy(update={"server": server}), sock
