"""A supervised engine child process: port, readiness wait, restart with backoff, clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import aiohttp

from inferlab.coordinator.locate import EngineCommand

STOP_GRACE_S = 10.0


class EngineState(str, enum.Enum):
    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    STOPPED = "stopped"
    FAILED = "failed"


class EngineObserver(Protocol):
    def engine_up_changed(self, engine: str, up: bool) -> None: ...

    def engine_restarted(self, engine: str) -> None: ...


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ManagedEngine:
    """Runs one engine (``command_for(port)``) and keeps it running until ``stop()``.

    The port is chosen once and kept across restarts, so the backend URL never changes.
    """

    def __init__(
        self,
        name: str,
        command_for: Callable[[int], EngineCommand],
        session: aiohttp.ClientSession,
        *,
        observer: EngineObserver,
        logger: logging.Logger,
        startup_timeout_s: float = 120.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.command = command_for(self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = EngineState.STOPPED
        self.restarts = 0
        self.last_error = ""
        self._session = session
        self._observer = observer
        self._log = logger
        self._startup_timeout_s = startup_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._ready = asyncio.Event()
        self._tail: deque[str] = deque(maxlen=20)
        self._auth = {"Authorization": f"Bearer {self.command.api_key}"}

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def is_ready(self) -> bool:
        return self.state is EngineState.READY

    def start(self) -> None:
        """Start supervising in the background; ``wait_ready`` tells when it serves."""
        self._stopping = False
        self._supervisor = asyncio.create_task(self._supervise(), name=f"engine-{self.name}")

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self._ready.is_set()

    async def _supervise(self) -> None:
        backoff = self._backoff_initial_s
        while not self._stopping:
            started = time.monotonic()
            await self._run_once()
            if self._stopping:
                break
            self.restarts += 1
            self._observer.engine_restarted(self.name)
            if time.monotonic() - started > 60:
                backoff = self._backoff_initial_s  # it ran fine for a while: start the backoff over
            self.state = EngineState.RESTARTING
            self._log.warning(
                "engine exited, restarting",
                extra={"engine": self.name, "restart_in_s": backoff, "last_error": self.last_error},
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._backoff_max_s)
        self.state = EngineState.STOPPED

    async def _run_once(self) -> None:
        self.state = EngineState.STARTING if self.restarts == 0 else EngineState.RESTARTING
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.command.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **dict(self.command.env)},
            )
        except OSError as exc:
            self.last_error = f"cannot start {self.command.argv[0]}: {exc}"
            self.state = EngineState.FAILED
            await asyncio.sleep(self._backoff_initial_s)
            return
        self._log.info(
            "engine process started",
            extra={"engine": self.name, "flavour": self.command.flavour, "pid": self._process.pid, "port": self.port},
        )
        pump = asyncio.create_task(self._pump_logs(self._process))
        probe = asyncio.create_task(self._await_health())
        try:
            await self._process.wait()
        finally:
            probe.cancel()
            await asyncio.gather(pump, probe, return_exceptions=True)
            self._ready.clear()
            self._observer.engine_up_changed(self.name, False)
        if not self._stopping:
            self.last_error = f"exit code {self._process.returncode}; last lines: " + " | ".join(self._tail)

    async def _await_health(self) -> None:
        deadline = time.monotonic() + self._startup_timeout_s
        url = self.url + self.command.health_path
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with self._session.get(
                    url, timeout=aiohttp.ClientTimeout(total=2), headers=self._auth
                ) as response:
                    if response.status == 200:
                        self.state = EngineState.READY
                        self._ready.set()
                        self._observer.engine_up_changed(self.name, True)
                        self._log.info("engine ready", extra={"engine": self.name, "url": self.url})
                        return
            await asyncio.sleep(0.2)
        self.last_error = f"not healthy within {self._startup_timeout_s:.0f}s"
        self._log.error("engine did not become healthy, killing it", extra={"engine": self.name})
        self._signal(signal.SIGKILL)

    async def _pump_logs(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            self._tail.append(line)
            level = logging.WARNING if ("error" in line.lower() or "failed" in line.lower()) else logging.INFO
            self._log.log(level, line, extra={"engine": self.name})

    def _signal(self, sig: int) -> None:
        if self._process and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, sig)

    async def stop(self) -> None:
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            self._signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except TimeoutError:
                self._signal(signal.SIGKILL)
                await process.wait()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self.state = EngineState.STOPPED
        self._log.info("engine stopped", extra={"engine": self.name})
