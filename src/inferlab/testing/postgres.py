"""A private PostgreSQL cluster for fault tests that stop the database: the shared server other
tests use is never touched. Debian's ``initdb`` and ``pg_ctl`` (``/usr/lib/postgresql/*/bin``), run
as the ``postgres`` OS user (through ``runuser`` when the tests run as root), in a temporary
directory, on a port of its own, listening on 127.0.0.1 only, ``trust`` authentication.

    cluster = PrivatePostgres.create()   # None when it cannot run here (see ``unavailable``)
    cluster.start(); cluster.stop(); cluster.start(); cluster.destroy()

fsync is off: what is under test is the gateway's durability, not PostgreSQL's.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from inferlab.testing.gateway_process import free_port

__all__ = ["PrivatePostgres"]


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


class PrivatePostgres:
    def __init__(self, bin_dir: Path, root: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.port = port
        self.data = root / "data"
        self.log = root / "postgres.log"

    @staticmethod
    def unavailable() -> str | None:
        """Why a private cluster cannot run here, or None."""
        if _binaries() is None:
            return "PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) are not installed"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "there is no `postgres` OS user to run a private cluster as"
        if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
            return "a private cluster runs as the `postgres` OS user: run the tests as root or as postgres"
        return None

    @classmethod
    def create(cls) -> PrivatePostgres:
        """A new cluster (``initdb``), not started."""
        bin_dir = _binaries()
        if bin_dir is None:
            raise RuntimeError(cls.unavailable() or "no PostgreSQL binaries")
        root = Path(tempfile.mkdtemp(prefix="inferlab-pg-"))
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        cluster = cls(bin_dir, root, free_port())
        cluster._run("initdb", "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        return cluster

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, cwd=self.root, timeout=120)

    @property
    def server_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clients disconnected), ``immediate`` (as a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
