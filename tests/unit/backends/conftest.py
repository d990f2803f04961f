"""Fixtures for the engine adapters' readers: a real HTTP server that sends chosen bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer


@pytest.fixture
async def serve_bytes() -> AsyncIterator[Any]:
    """``url_for(body, piece=7)``: a URL whose response body is ``body``, sent in pieces of
    ``piece`` bytes (any method). ``body`` may instead be a list of writes, sent 20 ms apart (each
    arrives as its own block); a ``None`` in it stalls the response for a minute."""
    bodies: dict[str, tuple[bytes | list[bytes | None], int]] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        body, piece = bodies[request.match_info["name"]]
        if isinstance(body, list):
            for write in body:
                await asyncio.sleep(60 if write is None else 0.02)
                if write is not None:
                    await response.write(write)
        else:
            for i in range(0, len(body), piece):
                await response.write(body[i:i + piece])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/{name}", handler)
    server = TestServer(app)
    await server.start_server()

    def url_for(body: bytes | list[bytes | None], piece: int = 7) -> str:
        name = str(len(bodies))
        bodies[name] = (body, piece)
        return str(server.make_url("/" + name))

    yield url_for
    await server.close()


