"""The ``inferlab`` command line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from inferlab import __version__
from inferlab.config import ConfigError, Settings, load_settings

app = typer.Typer(
    help="InferLab: a self-hosted LLM inference control plane with an OpenAI-compatible API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
engines_app = typer.Typer(help="Build and inspect the inference engines InferLab runs itself.", no_args_is_help=True)
config_app = typer.Typer(help="Check and show the effective configuration.", no_args_is_help=True)
app.add_typer(engines_app, name="engines")
app.add_typer(config_app, name="config")


def _settings(
    config: Path | None, profile: str | None, overrides: dict[str, Any], *, to_serve: bool = False
) -> Settings:
    """The validated settings; ``to_serve``: also what ``serve`` needs to start (``preflight``)."""
    try:
        settings = load_settings(config, profile=profile, overrides=overrides)
        if to_serve:
            from inferlab.preflight import preflight

            preflight(settings)
        return settings
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _server_overrides(host: str | None, port: int | None, data_dir: Path | None, remote: bool,
                      workers: int | None = None) -> dict[str, Any]:
    server: dict[str, Any] = {} if workers is None else {"workers": workers}
    if host is not None:
        server["host"] = host
    if port is not None:
        server["port"] = port
    if remote:
        server["insecure_allow_remote"] = True
    overrides: dict[str, Any] = {"server": server} if server else {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    return overrides


PROFILE = typer.Option(None, help="Profile: laptop (default) or production.")
CONFIG = typer.Option(None, "--config", "-c", help="YAML configuration file.")
HOST = typer.Option(None, help="Address to listen on (default 127.0.0.1).")
PORT = typer.Option(None, help="Port to listen on (default 8000).")
DATA_DIR = typer.Option(None, help="Where InferLab keeps its state.")
REMOTE = typer.Option(
    False, "--insecure-allow-remote", help="Listen on a non-loopback address without authentication."
)


def banner_lines(settings: Settings, engines: list[Any], *, workers: int = 1) -> list[str]:
    """What ``serve`` prints once it listens: the version, the address, where each model runs."""
    processes = f" ({workers} workers)" if workers > 1 else ""
    lines = [f"InferLab {__version__} listening on http://{settings.server.host}:{settings.server.port}/v1{processes}"]
    for engine in engines:
        lines.append(f"  engine {engine.name}: {engine.command.flavour} on {engine.url} (managed)")
    for model in settings.models:
        if model.backend != "llamacpp" or model.url or model.urls:
            where = ", ".join(model.urls) if model.urls else model.url
            lines.append(f"  model {model.name}: {model.backend} engine at {where}")
    return lines


def _version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print InferLab's version and exit."
    ),
) -> None:
    """InferLab: a self-hosted LLM inference control plane with an OpenAI-compatible API."""


@app.command()
def serve(
    profile: str | None = PROFILE,
    config: Path | None = CONFIG,
    host: str | None = HOST,
    port: int | None = PORT,
    data_dir: Path | None = DATA_DIR,
    insecure_allow_remote: bool = REMOTE,
    workers: int | None = typer.Option(None, min=1, help="Gateway processes sharing the port (default 1); more "
                                       "need rate limits on Redis and the store on PostgreSQL."),
) -> None:
    """Start the gateway and the engines it manages (with no config: SmolLM2-135M on llama.cpp)."""
    from inferlab.coordinator.locate import EngineUnavailable
    from inferlab.logs import configure_logging
    from inferlab.server import serve as run_server

    overrides = _server_overrides(host, port, data_dir, insecure_allow_remote, workers)
    settings = _settings(config, profile, overrides, to_serve=True)
    logger = configure_logging(settings.logging.level, settings.logging.json_format)
    console = Console(stderr=True)

    def announce(engines: list[Any]) -> None:
        for line in banner_lines(settings, engines, workers=settings.server.workers):
            console.print(line, highlight=False)

    try:
        if settings.server.workers > 1:
            from inferlab.workers import Supervisor

            _run(Supervisor(settings, logger, announce).run())
        else:
            _run(run_server(settings, logger, lambda gateway: announce(gateway.engines)))
    except EngineUnavailable as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def _run(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


@engines_app.command("build")
def engines_build(
    jobs: int | None = typer.Option(None, help="Parallel compile jobs (default: all cores)."),
    force: bool = typer.Option(False, help="Rebuild even if a cached binary exists."),
    cache_dir: Path | None = typer.Option(None, help="Cache directory (default ~/.cache/inferlab)."),
    tool: str = typer.Option("llama-server", help="Program: llama-server, llama-quantize (requantises GGUF files), or"
                             " rpc-server (the RPC build: rpc-server and an llama-server that takes --rpc)."),
) -> None:
    """Build llama-server (or --tool llama-quantize / rpc-server) from the llama.cpp sources in the
    llama-cpp-python sdist (cached)."""
    from inferlab.coordinator.build import BuildError, build_llama_tool

    settings = _settings(None, None, {"engines": {"cache_dir": cache_dir}} if cache_dir else {})
    console = Console(stderr=True)
    try:
        path = build_llama_tool(settings.engines.cache_dir, tool, jobs=jobs, force=force, say=console.print)
    except BuildError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    print(path)


@engines_app.command("status")
def engines_status(
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML configuration file."),
) -> None:
    """Say which llama.cpp engine `serve` would run and where the embedded model is."""
    from inferlab.coordinator.locate import (
        EngineUnavailable,
        find_llama_server,
        has_llama_cpp_python,
        resolve_model_path,
    )

    settings = _settings(config, None, {})
    console = Console()
    try:
        server = find_llama_server(settings.engines)
    except EngineUnavailable as exc:
        server = None
        console.print(f"llama-server: {exc}")
    console.print(f"llama-server: {server or 'not found (run `inferlab engines build`)'}")
    console.print(f"llama-cpp-python server: {'installed' if has_llama_cpp_python() else 'not installed'}")
    try:
        console.print(f"embedded model: {resolve_model_path('embedded:smollm2')}")
    except EngineUnavailable as exc:
        console.print(f"embedded model: {exc}")


@config_app.command("check")
def config_check(
    config: Path | None = CONFIG,
    profile: str | None = PROFILE,
    host: str | None = HOST,
    port: int | None = PORT,
    data_dir: Path | None = DATA_DIR,
    insecure_allow_remote: bool = REMOTE,
) -> None:
    """Check the configuration as `serve` would (same flags, same checks; exit 2 when it would refuse)
    and print the effective settings as JSON."""
    overrides = _server_overrides(host, port, data_dir, insecure_allow_remote)
    settings = _settings(config, profile, overrides, to_serve=True)
    print(settings.model_dump_json(indent=2))


@app.command()
def version() -> None:
    """Print InferLab's version."""
    print(__version__)


def _register_plugins() -> None:
    from inferlab.auth import cli as auth_cli  # keys, users, db

    auth_cli.register(app)
    from inferlab.tenants import cli as tenants_cli  # tenants, tiers

    tenants_cli.register(app)
    from inferlab.benchmark import cli as bench_cli
    from inferlab.billing import cli as billing_cli
    from inferlab.coordinator import cli as deploy_cli
    from inferlab.evaluation import cli as eval_cli
    from inferlab.metering import cli as usage_cli
    from inferlab.modelstore import cli as models_cli
    from inferlab.planning import cli as planning_cli
    from inferlab.registry import cli as registry_cli
    from inferlab.resources import cli as resources_cli
    from inferlab.slo import cli as slo_cli

    bench_cli.register(app)
    billing_cli.register(app)  # invoices, payments, dunning
    deploy_cli.register(app)
    eval_cli.register(app)
    planning_cli.register(app)
    resources_cli.register(app)
    slo_cli.register(app)
    usage_cli.register(app)  # usage report, forecast
    models_cli.register(app)  # the local model store
    registry_cli.register(app)  # versions, aliases, experiments
    from inferlab.capacity import cli as capacity_cli

    capacity_cli.register(app)  # capacity plan


def main() -> None:
    _register_plugins()
    app()
