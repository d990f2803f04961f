"""The sandbox stops or refuses what generated code must not do, and the evaluation goes on.

Full isolation needs root on Linux (CI runs as root); elsewhere these tests are skipped, and fail
under CI. The limits-only mode is tested too, for what it does promise.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferlab.evaluation.sandbox import Execution, Sandbox, SandboxLimits, SandboxUnavailable
from inferlab.testing.needs import require

LIMITS = SandboxLimits(wall_seconds=4.0, cpu_seconds=1, memory_mb=512, file_mb=4, processes=16)
UID_BASE = 1_999_000_000


def _require_full_isolation() -> None:
    require(sys.platform.startswith("linux") and os.geteuid() == 0, "full sandbox isolation needs root on Linux")


@pytest.fixture
def listener() -> Iterator[int]:
    """A real TCP server on loopback: reachable from this process, so a refusal is the sandbox's doing."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        yield port


def _processes_of(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except FileNotFoundError:
                continue
    return found


def test_hostile_programs_are_stopped_or_refused_and_the_evaluation_continues(
    listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_full_isolation()
    secret = f"secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("INFERLAB_TEST_SECRET", secret)
    outside = Path("/tmp") / f"inferlab-escaped-{uuid.uuid4().hex}"  # /tmp is world-writable, outside it is not
    programs = {
        "loops forever": "while True:\n    pass\n",
        "sleeps forever": "import time\ntime.sleep(3600)\n",
        "allocates 10 GB": "block = bytearray(10 * 1024 ** 3)\nprint('allocated')\n",
        "forks repeatedly": (
            "import os, time\n"
            "for _ in range(10000):\n"
            "    try:\n        os.fork()\n    except OSError:\n        pass\n"
            "time.sleep(3600)\n"
        ),
        "writes outside its directory": f"open({str(outside)!r}, 'w').write('x')\nprint('wrote')\n",
        "writes a huge file": "open('big', 'wb').write(b'x' * (64 * 1024 * 1024))\nprint('wrote')\n",
        "reads the parent's secrets": (
            "import os\n"
            "print(os.environ.get('INFERLAB_TEST_SECRET'))\n"
            f"print(open('/proc/{os.getpid()}/environ').read())\n"
        ),
        "opens a network connection": (
            f"import socket\nsocket.create_connection(('127.0.0.1', {listener}), timeout=2)\nprint('connected')\n"
        ),
        "behaves": "import math\nassert math.gcd(12, 18) == 6\nopen('own-file.txt', 'w').write('fine')\n",
    }

    async def run_all() -> tuple[dict[str, Execution], str]:
        sandbox = Sandbox(LIMITS, concurrency=3, uid_base=UID_BASE)
        isolation = await sandbox.start()
        results = await asyncio.gather(*(sandbox.run(program) for program in programs.values()))
        after = await sandbox.run("print('still evaluating')\n")
        assert after.passed and "still evaluating" in after.output
        return dict(zip(programs, results, strict=True)), isolation.mode

    results, mode = asyncio.run(run_all())
    assert mode == "full"
    assert results["behaves"].passed, results["behaves"].output
    for name, execution in results.items():
        if name != "behaves":
            assert not execution.passed, f"{name}: {execution}"
    assert results["loops forever"].status == "failed"  # killed by the CPU-time limit, before the wall clock
    assert results["loops forever"].seconds < LIMITS.wall_seconds
    assert results["sleeps forever"].status == "timeout"
    assert "MemoryError" in results["allocates 10 GB"].output
    assert results["forks repeatedly"].status == "timeout"
    assert "Read-only file system" in results["writes outside its directory"].output
    assert not outside.exists()
    assert "File too large" in results["writes a huge file"].output
    assert secret not in results["reads the parent's secrets"].output
    assert "None" in results["reads the parent's secrets"].output  # the variable is not in its environment
    assert "Network is unreachable" in results["opens a network connection"].output
    assert all(not _processes_of(UID_BASE + slot) for slot in range(3)), "a sandboxed process outlived its run"


def test_limits_only_mode_still_limits_and_says_it_is_not_isolated() -> None:
    async def run() -> tuple[str, Execution, Execution, Execution]:
        sandbox = Sandbox(LIMITS, isolation="limits")
        isolation = await sandbox.start()
        loop = await sandbox.run("while True:\n    pass\n")
        memory = await sandbox.run("block = bytearray(10 * 1024 ** 3)\n")
        fine = await sandbox.run("print(sum(range(10)))\n")
        return isolation.notice, loop, memory, fine

    notice, loop, memory, fine = asyncio.run(run())
    assert "NOT isolated" in notice and "network" in notice
    assert not loop.passed and loop.seconds < LIMITS.wall_seconds + 1
    assert "MemoryError" in memory.output
    assert fine.passed and "45" in fine.output


def test_full_isolation_refused_where_it_is_impossible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    async def start() -> None:
        await Sandbox(isolation="full").start()

    with pytest.raises(SandboxUnavailable, match="need root"):
        asyncio.run(start())
    auto = Sandbox(isolation="auto")
    assert asyncio.run(auto.start()).mode == "limits"
