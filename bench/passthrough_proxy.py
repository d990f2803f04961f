"""A bare aiohttp pass-through proxy: the practical latency floor of a Python HTTP proxy.

It forwards method, path, query, headers and body to one upstream over one pooled ClientSession
and relays the answer: bodies of known length in one write, everything else (SSE streams) chunk by
chunk, unbuffered. No parsing, no auth, no metrics — the baseline a gateway's overhead is judged by.

    python bench/passthrough_proxy.py --port 8200 --upstream http://127.0.0.1:9001
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Mapping

import aiohttp
from aiohttp import web

_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length",
})
_SESSION = web.AppKey("session", aiohttp.ClientSession)
_UPSTREAM = web.AppKey("upstream", str)


def _forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in dict(headers).items() if k.lower() not in _HOP_BY_HOP}


async def _proxy(request: web.Request) -> web.StreamResponse:
    session = request.app[_SESSION]
    url = request.app[_UPSTREAM] + request.rel_url.path_qs
    body = await request.read()
    try:
        upstream = await session.request(
            request.method, url, data=body, headers=_forwarded_headers(request.headers)
        )
    except aiohttp.ClientError as exc:
        return web.json_response(
            {"error": {"message": f"upstream unreachable: {exc}", "type": "upstream_error",
                       "code": None, "param": None}}, status=502)
    async with upstream:
        headers = _forwarded_headers(upstream.headers)
        if upstream.content_length is not None:
            return web.Response(status=upstream.status, headers=headers, body=await upstream.read())
        response = web.StreamResponse(status=upstream.status, headers=headers)
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
        except aiohttp.ClientError:
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response


def build_app(upstream: str) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[_UPSTREAM] = upstream.rstrip("/")

    async def client_session(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
        async with aiohttp.ClientSession(
            connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None)
        ) as session:
            app[_SESSION] = session
            yield

    app.cleanup_ctx.append(client_session)
    app.router.add_route("*", "/{tail:.*}", _proxy)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Bare aiohttp pass-through proxy (benchmark baseline).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--upstream", default="http://127.0.0.1:9001")
    args = parser.parse_args()
    loop_factory = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(build_app(args.upstream), args.host, args.port))


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    print(f"pass-through proxy on http://{host}:{port} -> {app[_UPSTREAM]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    main()
