"""A TCP proxy for fault tests: put it between the gateway and a real server, then make that server
look paused (connections accepted, bytes held, nothing answered) or unreachable (refused, and the
open connections reset), and bring it back.

    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()            # proxy.port forwards to PostgreSQL
    proxy.pause(); proxy.resume()  # a paused server (SIGSTOP, a network partition that drops)
    await proxy.cut(); await proxy.restore()  # a server that is down (connection refused)
    proxy.lose_next_answer()       # the next request reaches the server; its answer never comes back
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._host = host
        self.port = 0
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepted = 0  # connections accepted
        self.forwarded = 0  # chunks passed on, both ways
        self.lost = 0  # answers lost (``lose_next_answer``)
        self._answers_to_lose = 0

    async def start(self) -> None:
        """Listen (on a free port the first time, on the same port after ``cut``)."""
        self._server = await asyncio.start_server(self._accept, self._host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def pause(self) -> None:
        """Keep accepting connections and reading bytes, forward nothing either way."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def lose_next_answer(self) -> None:
        """The next answer's first bytes are dropped and its connection reset, both sides: the
        request was forwarded and handled, the client sees the connection die before any answer."""
        self._answers_to_lose += 1

    async def cut(self) -> None:
        """Stop listening (connection refused) and reset every open connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._close_connections()

    async def restore(self) -> None:
        await self.start()

    async def stop(self) -> None:
        self.resume()
        await self.cut()

    async def _close_connections(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        self._tasks.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(upstream_writer)
        for source, sink, peer in ((reader, upstream_writer, None), (upstream_reader, writer, upstream_writer)):
            task = asyncio.create_task(self._pipe(source, sink, peer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter,
                    upstream: asyncio.StreamWriter | None) -> None:
        """``upstream``: set on the answer's direction (server to client)."""
        try:
            while chunk := await source.read(65536):
                await self._flowing.wait()
                if upstream is not None and self._answers_to_lose:
                    self._answers_to_lose -= 1
                    self.lost += 1
                    upstream.transport.abort()
                    return  # finally: the client's side is reset too
                sink.write(chunk)
                self.forwarded += 1
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.transport.abort()
            self._writers.discard(sink)
