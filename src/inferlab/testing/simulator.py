"""A scriptable inference-engine simulator for load and fault tests — not a model.

``EngineSimulator`` is an aiohttp server that speaks an engine's HTTP protocol (OpenAI-compatible,
shaped like vLLM's server, Ollama's native API, or JetStream's HTTP server) and answers with deterministic filler words, at
scripted speed, failing on cue. Its behaviour is a ``SimulatorScript``, mutable while it runs, in
process (``sim.script.hang = True``) or over HTTP from another process::

    POST /_sim/script  {"fail_status": 503, "fail_next": 2}   partial update; answers the script
    GET  /_sim/script                                          the current script
    GET  /_sim/stats                                           counters (requests_total, in_flight, ...)
    POST /_sim/reset                                           zero the counters
    GET  /health                                               {"status": "ok"}

Run it standalone for benchmarks::

    python -m inferlab.testing.simulator --port 9001 --tokens 16 --token-delay-ms 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence
from typing import Any, Literal, Self

import orjson
from aiohttp import web

from inferlab.testing._jetstream import JetStreamFrontEnd
from inferlab.testing._ollama import OllamaFrontEnd
from inferlab.testing._openai import OpenAIFrontEnd
from inferlab.testing._state import ScriptError, SimulatorScript, SimulatorState, SimulatorStats

Protocol = Literal["openai", "ollama", "jetstream"]

__all__ = ["EngineSimulator", "Protocol", "ScriptError", "SimulatorScript", "main"]

_SHUTDOWN_TIMEOUT_S = 2.0


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


class EngineSimulator:
    """A simulated inference engine on a local port. See the module docstring."""

    def __init__(
        self,
        script: SimulatorScript | None = None,
        *,
        model: str = "sim-model",
        protocol: Protocol = "openai",
    ) -> None:
        if protocol not in ("openai", "ollama", "jetstream"):
            raise ValueError(f"unknown simulator protocol {protocol!r}; use 'openai', 'ollama' or 'jetstream'")
        self.model = model
        self.protocol: Protocol = protocol
        self._initial_script = script if script is not None else SimulatorScript()
        self._state: SimulatorState | None = None
        self._runner: web.AppRunner | None = None
        self.base_url: str | None = None

    @property
    def state(self) -> SimulatorState:
        if self._state is None:
            self._state = SimulatorState(self._initial_script)
        return self._state

    @property
    def script(self) -> SimulatorScript:
        return self.state.script

    @script.setter
    def script(self, script: SimulatorScript) -> None:
        self.state.script = script

    @property
    def stats(self) -> SimulatorStats:
        return self.state.stats

    @property
    def requests_total(self) -> int:
        return self.stats.requests_total

    @property
    def in_flight(self) -> int:
        return self.stats.in_flight

    @property
    def max_in_flight_seen(self) -> int:
        return self.stats.max_in_flight_seen

    @property
    def last_request(self) -> dict[str, Any] | None:
        """The last request body a front end (OpenAI or Ollama) received, as the engine saw it."""
        return self.state.last_request

    def build_app(self) -> web.Application:
        """The aiohttp application, for callers that run it themselves (e.g. an aiohttp test client)."""
        state = self.state
        front_end: OpenAIFrontEnd | OllamaFrontEnd | JetStreamFrontEnd
        if self.protocol == "openai":
            front_end = OpenAIFrontEnd(state, self.model)
        elif self.protocol == "ollama":
            front_end = OllamaFrontEnd(state, self.model)
        else:
            front_end = JetStreamFrontEnd(state)
        app = web.Application()
        app.add_routes(front_end.routes())
        app.add_routes([
            web.get("/health", self._health),
            web.get("/_sim/script", self._get_script),
            web.post("/_sim/script", self._set_script),
            web.get("/_sim/stats", self._get_stats),
            web.post("/_sim/reset", self._reset_stats),
        ])
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 = a free port) and return the base URL."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self.state.reopen()
        runner = web.AppRunner(
            self.build_app(),
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=_SHUTDOWN_TIMEOUT_S,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.base_url = f"http://{bound_host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop listening; hanging requests are dropped, streams get a short grace period."""
        if self._runner is None:
            return
        self.state.begin_closing()
        runner, self._runner = self._runner, None
        await runner.cleanup()
        self.base_url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _health(self, request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def _get_script(self, request: web.Request) -> web.Response:
        return _json(self.script.to_dict())

    async def _set_script(self, request: web.Request) -> web.Response:
        try:
            fields = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _json({"error": f"invalid JSON: {exc}"}, status=400)
        if not isinstance(fields, dict):
            return _json({"error": "the script update must be a JSON object"}, status=400)
        try:
            self.script.update(fields)
        except ScriptError as exc:
            return _json({"error": str(exc)}, status=400)
        await self.state.script_changed()
        return _json(self.script.to_dict())

    async def _get_stats(self, request: web.Request) -> web.Response:
        return _json(self.stats.to_dict())

    async def _reset_stats(self, request: web.Request) -> web.Response:
        stats = self.stats
        stats.requests_total = stats.in_flight
        stats.max_in_flight_seen = stats.in_flight
        stats.prompt_tokens_total = 0
        stats.generation_tokens_total = 0
        stats.cancelled_total = 0
        stats.streamed_tokens_total = 0
        stats.tokenize_total = 0
        return _json(stats.to_dict())


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m inferlab.testing.simulator",
        description="Run the InferLab engine simulator (deterministic filler output, not a model).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--protocol", choices=["openai", "ollama", "jetstream"], default="openai")
    parser.add_argument("--model", default="sim-model")
    parser.add_argument("--tokens", type=int, default=16, help="completion tokens per request")
    parser.add_argument("--token-delay-ms", type=float, default=0.0)
    parser.add_argument("--prefill-delay-ms", type=float, default=0.0)
    parser.add_argument("--prefill-token-delay-ms", type=float, default=0.0, help="more prefill per prompt token")
    parser.add_argument("--max-concurrency", type=int, default=None)
    parser.add_argument("--saturation-concurrency", type=int, default=None,
                        help="beyond this many running requests, every token slows in proportion")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    script = SimulatorScript(
        completion_tokens=args.tokens,
        token_delay_s=args.token_delay_ms / 1000.0,
        prefill_delay_s=args.prefill_delay_ms / 1000.0,
        prefill_token_delay_s=args.prefill_token_delay_ms / 1000.0,
        max_concurrency=args.max_concurrency,
        saturation_concurrency=args.saturation_concurrency,
    )
    simulator = EngineSimulator(script, model=args.model, protocol=args.protocol)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    url = await simulator.start(args.host, args.port)
    print(f"engine simulator ({args.protocol}, model {args.model!r}) listening on {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await simulator.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m inferlab.testing.simulator``; uses uvloop when installed."""
    args = _parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(args))
    else:
        uvloop.run(_serve(args))


if __name__ == "__main__":
    main()
