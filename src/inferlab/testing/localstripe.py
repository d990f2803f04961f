"""localstripe — a stateful Stripe double (PyPI, GPL-3) — for the Stripe adapter's tests.

It is run unmodified as a separate process from a virtualenv of its own under
``~/.cache/inferlab/localstripe-<version>`` (created on first use, or by ``./dev setup test``
through ``python -m inferlab.testing.localstripe install``); InferLab never imports it. Each run
starts from scratch on a free port; webhooks are registered through its ``/_config`` endpoint.
(It writes its state to ``/tmp/localstripe.pickle`` and never reads it back with ``--from-scratch``.)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import venv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

VERSION = "1.15.10"
CACHE = Path(os.environ.get("INFERLAB_LOCALSTRIPE_DIR", f"~/.cache/inferlab/localstripe-{VERSION}")).expanduser()


def executable(cache: Path = CACHE) -> Path:
    return cache / "bin" / "localstripe"


def install(cache: Path = CACHE) -> Path:
    """The localstripe command, its virtualenv created and localstripe installed from PyPI once
    (under a file lock: parallel test workers install it once)."""
    found = executable(cache)
    if found.exists():
        return found
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f".{cache.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not found.exists():
            building = cache.with_name(cache.name + ".partial")
            subprocess.run(["rm", "-rf", str(building)], check=True)
            venv.EnvBuilder(with_pip=True).create(building)
            subprocess.run([str(building / "bin" / "python"), "-m", "pip", "install", "-q",
                            f"localstripe=={VERSION}"], check=True)
            building.rename(cache)  # the venv's scripts name their interpreter by path: fix them
            for script in (cache / "bin").iterdir():
                if script.is_file() and not script.is_symlink():
                    text = script.read_bytes()
                    if text.startswith(b"#!") and str(building).encode() in text[:400]:
                        script.write_bytes(text.replace(str(building).encode(), str(cache).encode(), 1))
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalStripe:
    url: str
    process: subprocess.Popen[bytes]

    def register_webhook(self, name: str, url: str, secret: str, events: Sequence[str] | None = None) -> None:
        body: dict[str, object] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = list(events)
        request = urllib.request.Request(f"{self.url}/_config/webhooks/{name}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()


@contextlib.contextmanager
def running(cache: Path = CACHE, timeout_s: float = 30.0) -> Iterator[LocalStripe]:
    """localstripe on a free loopback port, from scratch; stopped at exit."""
    command = install(cache)
    port = _free_port()
    process = subprocess.Popen([str(command), "--port", str(port), "--from-scratch"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"localstripe did not start (exit {process.poll()})") from None
                time.sleep(0.05)
        yield LocalStripe(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: Sequence[str]) -> int:
    if list(argv) == ["install"]:
        print(install())
        return 0
    print("usage: python -m inferlab.testing.localstripe install", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
