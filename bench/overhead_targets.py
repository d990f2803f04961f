"""The overhead benchmark's processes: engine simulator, pass-through, LiteLLM and InferLab trees.

An InferLab tree is the working tree (``WORKTREE``), another directory holding ``src/inferlab``, or
a git ref checked out into a temporary ``git worktree add --detach``; it runs as
``python -m inferlab serve`` with ``PYTHONPATH=<tree>/src``, which comes before the editable
install on ``sys.path``. Each tree runs once per feature set: ``off`` (no auth, limits or cache)
or ``on`` (API keys, generous rate limits and a quota, the memory response cache).

Everything listens on and is reached at 127.0.0.1, on ports checked free first, so no answer can
come from someone else's server. Children run in their own sessions (a Ctrl-C reaches only the
script, which then stops them in order); every child is stopped and every temporary worktree
removed when the ``ExitStack`` closes, however the run ends.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
MODEL = "sim-model"
WORKTREE = "WORKTREE"
FEATURE_SETS = ("off", "default", "on", "platform", "tenants")
PASSTHROUGH = "passthrough"
_RESERVED_NAMES = frozenset({"direct", PASSTHROUGH, "litellm"})
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Tree:
    """An InferLab source tree to benchmark: ``spec`` is WORKTREE, a directory or a git ref."""

    name: str
    spec: str


@dataclass(frozen=True)
class Pinning:
    """CPU placement: gateways on one core, engine simulator and load generator on another."""

    gateway: str | None = None
    engine: str | None = None

    @classmethod
    def two_cores(cls) -> Pinning:
        allowed = os.sched_getaffinity(0)
        if not {0, 1} <= allowed or shutil.which("taskset") is None:
            raise SystemExit(f"--pin needs cores 0 and 1 (allowed: {sorted(allowed)}) and taskset on PATH")
        return cls(gateway="0", engine="1")

    def argv(self, cpu: str | None, argv: list[str]) -> list[str]:
        return ["taskset", "-c", cpu, *argv] if cpu is not None else argv


@dataclass(frozen=True)
class Target:
    """One thing the load generator is pointed at; ``pid`` is the process whose CPU time is read."""

    name: str
    base_url: str
    pid: int | None = None
    api_key: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def parse_tree(text: str) -> Tree:
    name, sep, spec = text.partition("=")
    if not sep or not name or not spec:
        raise argparse.ArgumentTypeError(f"expected NAME=GITREF (or NAME=WORKTREE, NAME=DIRECTORY), got {text!r}")
    if name in _RESERVED_NAMES:
        raise argparse.ArgumentTypeError(f"{name!r} names a baseline; choose another name")
    return Tree(name, spec)


def _git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def resolve(tree: Tree) -> tuple[Path | None, str]:
    """(a directory to run as it is, or None for a ref to check out; the commit or a description)."""
    if tree.spec == WORKTREE:
        return ROOT, describe(ROOT)
    if Path(tree.spec).is_dir():
        path = Path(tree.spec).resolve()
        if not (path / "src/inferlab/cli.py").exists():
            raise SystemExit(f"{tree.name}: {path} has no src/inferlab/cli.py")
        return path, describe(path)
    try:
        return None, _git("rev-parse", "--verify", "--quiet", f"{tree.spec}^{{commit}}")
    except RuntimeError:
        raise SystemExit(f"{tree.name}: {tree.spec!r} is neither WORKTREE, a directory nor a git ref") from None


def describe(path: Path) -> str:
    try:
        head = _git("rev-parse", "HEAD", cwd=path)
        dirty = _git("status", "--porcelain", cwd=path)
    except RuntimeError:
        return "not a git tree"
    return head + ("+uncommitted changes" if dirty else "")


@contextmanager
def checkout(commit: str, where: Path) -> Iterator[Path]:
    """A detached worktree of ``commit`` at ``where`` for the duration of the block."""
    _git("worktree", "add", "--detach", "--quiet", str(where), commit)
    try:
        yield where
    finally:
        try:
            _git("worktree", "remove", "--force", str(where))
        except RuntimeError:
            shutil.rmtree(where, ignore_errors=True)
            _git("worktree", "prune")


@contextmanager
def process(name: str, argv: list[str], logs: Path, env: dict[str, str], cwd: Path = ROOT,
            ) -> Iterator[subprocess.Popen[bytes]]:
    """Run one child (in its own session) for the block; stop it and its own children afterwards."""
    with open(logs / f"{slug(name)}.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
        try:
            yield proc
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)  # the child's own session: it and what it started, nothing else
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is not None:
        with suppress(ProcessLookupError, PermissionError):  # the leader is gone; a grandchild left in its group goes too
            os.killpg(proc.pid, signal.SIGKILL)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


async def wait_healthy(url: str, deadline_s: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + deadline_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline and (proc is None or proc.poll() is None):
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return proc is None or proc.poll() is None
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.25)
    return False


def tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
    return "\n".join(f"    {line}" for line in text)


def child_env(src: Path) -> dict[str, str]:
    """This environment with ``src`` first on PYTHONPATH and no INFERLAB_* settings leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("INFERLAB_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))
    return env


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its live descendants, every thread, in nanoseconds from the
    scheduler's own accounting (``/proc/<pid>/task/<tid>/schedstat``), where the kernel offers it;
    else user + system time from ``/proc/<pid>/stat`` (10 ms ticks: a scenario of a few hundred
    requests moves by whole ticks, ±0.02 ms per request at 500)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            stats[int(entry.name)] = (int(fields[1]), _scheduled_s(entry) or (int(fields[11]) + int(fields[12])) / _TICKS_PER_S)
    if pid not in stats:
        return 0.0
    total, frontier = 0.0, [pid]
    while frontier:
        current = frontier.pop()
        total += stats[current][1]
        frontier.extend(child for child, (parent, _) in stats.items() if parent == current)
    return total


def _scheduled_s(process: Path) -> float | None:
    """The time every thread of ``process`` has run on a CPU (schedstat), or None without schedstat."""
    total = 0
    try:
        for task in (process / "task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def inferlab_settings(sim_port: int, data_dir: Path, features: str, tree: Path = ROOT) -> dict[str, Any]:
    """``off``: every optional step off — the default configuration, less usage metering and SLO
    tracking where the tree has them (both on by default since v0.3; neither existed when the
    pipeline's goals against the pass-through were set). ``default``: the tree's defaults as shipped.
    ``on``: auth, limits and quota nobody reaches, memory cache. ``platform``: ``on`` plus the
    per-tenant resource allocator (a pool capacity nobody reaches); a tree that predates the
    allocator runs it as ``on``. ``on`` and ``platform`` keep the tree's defaults otherwise.
    ``tenants``: ``platform`` with metering and SLO tracking off — what the tenants issue put on v0.2's
    production path (``on``), and nothing of the later issues."""
    settings: dict[str, Any] = {
        "data_dir": str(data_dir),
        "models": [{"name": MODEL, "backend": "openai", "url": f"http://{LOOPBACK}:{sim_port}/v1"}],
    }
    optional = {name: False for name in ("metering", "slo") if (tree / f"src/inferlab/{name}").is_dir()}
    if features == "off" and optional:
        settings["features"] = optional
    if features in ("on", "platform", "tenants"):
        settings |= {
            "features": {"auth": True, "ratelimit": True, "cache": True},
            "ratelimit": {"backend": "memory", "limits": [{"scope": "key", "rpm": 10**9, "tpm": 10**12}]},
            "quota": {"limits": [{"scope": "key", "daily_tokens": 10**12}]},
            "cache": {"backend": "memory"},
        }
    if features in ("platform", "tenants"):
        settings["features"]["resources"] = True
        settings["resources"] = {"pools": {MODEL: {"sequences": 10**6, "kv_tokens": 10**12}}}
    if features == "tenants":
        settings["features"] |= optional
    return settings


def create_key(name: str, config: Path, env: dict[str, str], cwd: Path, logs: Path) -> str:
    """A member user and an inference key in the target's own store, with that tree's CLI."""
    steps = (["users", "create", "bench", "--role", "member"], ["keys", "create", "--user", "bench"])
    out = ""
    for step in steps:
        done = subprocess.run([sys.executable, "-m", "inferlab", *step, "--config", str(config)], env=env,
                              cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
        with open(logs / f"{slug(name)}-setup.log", "a") as log:
            log.write(f"$ inferlab {' '.join(step)}\n{done.stderr}")
        if done.returncode != 0:
            raise RuntimeError(f"inferlab {' '.join(step)} failed: {done.stderr.strip()[-500:]}")
        out = done.stdout.strip()
    key = out.splitlines()[-1] if out else ""
    if not key.startswith("il-"):
        raise RuntimeError(f"inferlab keys create printed no key: {out[-200:]!r}")
    return key


async def probe(target: Target) -> dict[str, str]:
    """One chat completion as the benchmark sends them; the headers that show limits and cache ran."""
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    body = {"model": MODEL, "max_tokens": 16, "temperature": 0.0,
            "messages": [{"role": "user", "content": f"overhead probe {target.name} {time.time_ns()}"}]}
    url = f"{target.base_url}/chat/completions"
    async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session,
                session.post(url, json=body, headers=headers) as response):
        text = await response.text()
        if response.status != 200:
            raise RuntimeError(f"probe answered HTTP {response.status}: {text[:300]}")
        return {k.lower(): v for k, v in response.headers.items()
                if k.lower() in ("x-inferlab-cache", "x-ratelimit-limit-requests", "x-ratelimit-limit-tokens")}


async def gateway_counters(target: Target) -> dict[str, float]:
    """Response-cache lookups by result and rate-limit refusals so far, from the gateway's /metrics."""
    url = target.base_url.removesuffix("/v1") + "/metrics"
    async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session,
                session.get(url) as response):
        text = await response.text() if response.status == 200 else ""
    counters = {"cache_hit": 0.0, "cache_miss": 0.0, "ratelimit_rejections": 0.0}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith("inferlab_ratelimit_rejections_total"):
            counters["ratelimit_rejections"] += float(value)
        elif name.startswith("inferlab_cache_requests_total{"):
            result = name.partition('result="')[2].partition('"')[0]
            counters[f"cache_{result}"] = counters.get(f"cache_{result}", 0.0) + float(value)
    return counters


@dataclass
class Launcher:
    """Starts children into ``stack``; returns the targets that answer their health check."""

    stack: ExitStack
    logs: Path
    pinning: Pinning
    started: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    callgrind: Path | None = None  # proxies run under valgrind's callgrind, their dumps here (bench/instructions.py)

    def start(self, name: str, argv: list[str], env: dict[str, str], *, port: int, health: str,
              wait_s: float, cpu: str | None, cwd: Path = ROOT, proxy: bool = False) -> subprocess.Popen[bytes] | None:
        if not port_free(port):
            print(f"{name}: skipped (port {port} on {LOOPBACK} is in use: another server must not answer for it)")
            return None
        if proxy and self.callgrind is not None:
            argv = ["valgrind", "--tool=callgrind", "--quiet",
                    f"--callgrind-out-file={self.callgrind / slug(name)}.%p", *argv]
            wait_s *= 30  # about 50× slower under callgrind: imports take minutes
        proc = self.stack.enter_context(process(name, self.pinning.argv(cpu, argv), self.logs, env, cwd))
        if not asyncio.run(wait_healthy(f"http://{LOOPBACK}:{port}{health}", wait_s, proc)):
            print(f"{name}: skipped (no healthy answer within {wait_s:.0f} s; see its log below)")
            print(tail(self.logs / f"{slug(name)}.log"))
            return None
        self.started[name] = proc
        return proc


def start_simulator(launcher: Launcher, port: int) -> Target:
    argv = [sys.executable, "-m", "inferlab.testing.simulator", "--host", LOOPBACK, "--port", str(port),
            "--tokens", "16", "--model", MODEL]
    proc = launcher.start("simulator", argv, child_env(ROOT / "src"), port=port, health="/health", wait_s=15,
                          cpu=launcher.pinning.engine)
    if proc is None:
        raise SystemExit("the engine simulator did not start")
    return Target("direct", f"http://{LOOPBACK}:{port}/v1", proc.pid, info={"process": "engine simulator"})


def start_baselines(launcher: Launcher, args: Any, sim_url: str) -> list[Target]:
    env, cpu, targets = child_env(ROOT / "src"), launcher.pinning.gateway, []
    argv = [sys.executable, "bench/passthrough_proxy.py", "--host", LOOPBACK, "--port", str(args.passthrough_port),
            "--upstream", sim_url]
    proc = launcher.start(PASSTHROUGH, argv, env, port=args.passthrough_port, health="/health", wait_s=15, cpu=cpu,
                          proxy=True)
    if proc is not None:
        targets.append(Target(PASSTHROUGH, f"http://{LOOPBACK}:{args.passthrough_port}/v1", proc.pid))
    if args.no_litellm or not (ROOT / "bench/.venv-litellm/bin/litellm").exists():
        print("litellm: skipped" + ("" if args.no_litellm else " (run bash bench/litellm/setup.sh to include it)"))
        return targets
    argv = ["bash", "bench/litellm/start.sh", str(args.litellm_port)]
    proc = launcher.start("litellm", argv, {**env, "SIM_API_BASE": f"{sim_url}/v1"}, port=args.litellm_port,
                          health="/health/liveliness", wait_s=90, cpu=cpu)
    if proc is not None:
        targets.append(Target("litellm", f"http://{LOOPBACK}:{args.litellm_port}/v1", proc.pid))
    return targets


def start_inferlab(launcher: Launcher, trees: list[tuple[Tree, Path | None, str]], features: list[str],
                   sim_port: int, first_port: int) -> list[Target]:
    """Every tree (as ``resolve`` left it) × feature set, on consecutive ports; refs are checked out
    into temporary worktrees, removed when the stack closes."""
    targets: list[Target] = []
    port = first_port
    for tree, given, version in trees:
        path = given or launcher.stack.enter_context(checkout(version, launcher.logs / f"tree-{slug(tree.name)}"))
        if not (path / "src/inferlab/__main__.py").exists():
            print(f"{tree.name}: skipped ({tree.spec} has no src/inferlab/__main__.py)")
            continue
        env = child_env(path / "src")
        loaded = subprocess.run([sys.executable, "-c", "import inferlab; print(inferlab.__file__)"],
                                env=env, cwd=path, capture_output=True, text=True, check=False).stdout.strip()
        if not loaded.startswith(str(path / "src")):
            raise SystemExit(f"{tree.name}: PYTHONPATH={path / 'src'} imports inferlab from {loaded!r}")
        for feature_set in features:
            name = tree.name if features == ["off"] else f"{tree.name} {feature_set}"
            target = _start_one(launcher, name, path, env, feature_set, sim_port, port)
            if target is not None:
                targets.append(Target(target.name, target.base_url, target.pid, target.api_key,
                                      {"tree": tree.spec, "version": version, "features": feature_set}))
            port += 1
    return targets


def _start_one(launcher: Launcher, name: str, path: Path, env: dict[str, str], feature_set: str, sim_port: int,
               port: int) -> Target | None:
    data_dir = launcher.logs / f"data-{slug(name)}"
    data_dir.mkdir()
    config = launcher.logs / f"{slug(name)}.yaml"
    if feature_set in ("platform", "tenants") and not (path / "src" / "inferlab" / "resources" / "step.py").exists():
        feature_set = "on"  # a tree that predates the allocator: its production path is "on"
    settings = inferlab_settings(sim_port, data_dir, feature_set, path)
    auth_config = path / "src/inferlab/config/auth.py"
    if launcher.callgrind is not None and auth_config.exists() and "store_timeout_s" in auth_config.read_text():
        settings["auth"] = {"store_timeout_s": 60}  # ~50× slower under callgrind: no store call may time out
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    try:
        key = create_key(name, config, env, path, launcher.logs) if feature_set not in ("off", "default") else None
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"{name}: skipped ({exc})")
        return None
    argv = [sys.executable, "-m", "inferlab", "serve", "--config", str(config), "--host", LOOPBACK,
            "--port", str(port)]
    proc = launcher.start(name, argv, env, port=port, health="/health", wait_s=60, cpu=launcher.pinning.gateway,
                          cwd=path, proxy=True)
    if proc is None:
        return None
    target = Target(name, f"http://{LOOPBACK}:{port}/v1", proc.pid, key)
    try:
        seen = asyncio.run(probe(target))
    except (RuntimeError, aiohttp.ClientError, TimeoutError) as exc:
        print(f"{name}: skipped ({exc})")
        return None
    print(f"{name}: {orjson.dumps(seen).decode() if seen else 'ready'}")
    return target
