"""``LocalProvider``: every rank of a group is a child process of the gateway, on this machine.

Ports are chosen once per rank and kept across restarts, so a restarted group's leader answers at
the same URL. Each child runs in a session of its own, so stopping it stops whatever it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from dataclasses import dataclass

from inferlab.coordinator.engine_process import free_port
from inferlab.coordinator.provider import RankProcess, Slot
from inferlab.coordinator.spec import GroupPlan, RankSpec, fill

LOCAL_NODE = "local"


@dataclass(frozen=True, slots=True)
class LocalPlacement:
    slots: tuple[Slot, ...]


class LocalRank:
    """A rank as a child process; its output goes to the log, its last lines are kept."""

    def __init__(self, process: asyncio.subprocess.Process, host: str, port: int, logger: logging.Logger,
                 labels: dict[str, object]) -> None:
        self._process = process
        self._host = host
        self._port = port
        self._log = logger
        self._labels = labels
        self._tail: deque[str] = deque(maxlen=20)
        self._pump = asyncio.create_task(self._pump_output(), name=f"rank-log-{labels.get('rank')}")

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def node_id(self) -> str:
        return LOCAL_NODE

    def tail(self) -> list[str]:
        return list(self._tail)

    async def _pump_output(self) -> None:
        stream = self._process.stdout
        assert stream is not None
        async for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._tail.append(line)
                self._log.debug(line, extra=self._labels)

    async def wait(self) -> str:
        code = await self._process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._pump), 1.0)
        return f"exit code {code}"

    def _signal(self, sig: int) -> None:
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, sig)

    async def stop(self, grace_s: float) -> None:
        self._signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._process.wait(), grace_s)
        except TimeoutError:
            self._signal(signal.SIGKILL)
            await self._process.wait()
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump


class LocalProvider:
    """Ranks as child processes on 127.0.0.1; a port per (group, rank), kept across restarts."""

    name = "local"

    def __init__(self, logger: logging.Logger, host: str = "127.0.0.1") -> None:
        self._log = logger
        self._host = host
        self._ports: dict[tuple[str, int], int] = {}

    async def place(self, plan: GroupPlan, timeout_s: float) -> LocalPlacement:
        return LocalPlacement(tuple(Slot(LOCAL_NODE, self._host, rank.index) for rank in plan.ranks))

    async def spawn(self, plan: GroupPlan, rank: RankSpec, slot: Slot, values: dict[str, str]) -> RankProcess:
        port = rank.port or self._ports.setdefault((plan.name, rank.index), free_port(self._host))
        argv = fill(rank.argv, {**values, "host": self._host, "port": str(port)})
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True, env={**os.environ, **dict(rank.env)},
        )
        labels: dict[str, object] = {"group": plan.name, "rank": rank.index, "role": rank.role, "pid": process.pid}
        self._log.info("rank started", extra={**labels, "port": port, "node": LOCAL_NODE})
        return LocalRank(process, self._host, port, self._log, labels)

    async def release(self, placement: object) -> None:
        return None

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def alive_nodes(self) -> list[str]:
        return [LOCAL_NODE]
