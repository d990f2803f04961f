"""Run the gateway until SIGTERM/SIGINT, then drain: readiness off at once, in-flight work gets
``server.drain_timeout_s`` to finish, the rest ends cleanly, engines stop, exit code 0."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Callable, Mapping

from aiohttp import web

from inferlab.api.http_server import GatewayRunner
from inferlab.app import SERVICES, create_app
from inferlab.config import Settings
from inferlab.coordinator.attached import EngineHandoff
from inferlab.services import Services

ABORT_GRACE_S = 5.0


async def serve(settings: Settings, logger: logging.Logger, on_listening: Callable[[Services], None] | None = None,
                *, attached: Mapping[str, EngineHandoff] | None = None, sock: socket.socket | None = None) -> None:
    """``attached`` and ``sock``: this is one of ``serve --workers``' workers (workers/supervisor.py):
    its managed engines are the supervisor's, and it accepts on the supervisor's listening socket."""
    app = await create_app(settings, logger=logger, attached=attached)
    gateway = app[SERVICES]
    # A client that disconnects cancels its handler, which closes the engine's request at once
    # (aiohttp's default is to let the handler run on); aiohttp's test server does the same.
    runner = GatewayRunner(
        app, settings.server, access_log=None, handle_signals=False, shutdown_timeout=ABORT_GRACE_S,
        handler_cancellation=True,
    )
    await runner.setup()
    site: web.BaseSite = (web.SockSite(runner, sock) if sock is not None else
                          web.TCPSite(runner, settings.server.host, settings.server.port, backlog=1024, reuse_address=True))
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise SystemExit(f"cannot listen on {settings.server.host}:{settings.server.port}: {exc.strerror}") from None
    # Everything built so far (settings, catalogue, routes, the app) lives as long as the process:
    # moved out of the collector's generations, it is no longer traversed on every collection.
    gc.collect()
    gc.freeze()
    logger.info("listening", extra={"host": settings.server.host, "port": settings.server.port})
    if on_listening is not None:
        on_listening(gateway)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    drain = gateway.drain
    drain.begin()
    logger.info("draining", extra={"in_flight": drain.in_flight, "timeout_s": settings.server.drain_timeout_s})
    if not await drain.wait_idle(settings.server.drain_timeout_s):
        aborted = drain.abort_all()
        logger.warning("drain timeout: ending in-flight requests", extra={"aborted": aborted})
        await drain.wait_idle(ABORT_GRACE_S)
    await runner.cleanup()
    logger.info("stopped")
