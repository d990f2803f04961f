"""Reading a request body within a memory and a time budget.

Memory: the body is read in pieces of at most ``PIECE`` bytes and refused (413) as soon as it
passes the cap — at once when its Content-Length says so, else when the bytes received so far do.
A ``gzip`` or ``deflate`` body is inflated piece by piece against the same cap, so a zip bomb
costs what the cap costs, never its inflated size; other content codings are refused (415). A
refused body costs at most the cap plus a piece; an accepted one is joined once at the end.

Time: 408 when the body has not arrived ``timeout_s`` after reading started plus one second per
``min_rate`` bytes received, so a client that trickles a body cannot hold a handler, while a large
body on a slow but steady link is still read (Apache's ``RequestReadTimeout body=..,MinRate=..``).

The body is read once per request and kept, so the auth middleware and the handler share it.
aiohttp's own decompression is off (``auto_decompress`` in ``create_app``): it inflates ahead of
the reader, into a buffer that ``request.read()`` lets grow to twice the cap.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from inferlab.api.http_server import GuardedRequestHandler
from inferlab.config import ServerSettings
from inferlab.errors import InvalidRequest, PayloadTooLarge, RequestTimeout, UnsupportedContentEncoding

PIECE = 64 * 1024


@dataclass(frozen=True, slots=True)
class BodyTiming:
    timeout_s: float
    min_rate: float  # bytes a second that earn one more second

    @classmethod
    def of(cls, server: ServerSettings) -> BodyTiming:
        return cls(server.body_timeout_s, server.body_min_rate_bytes_s)


BODY_TIMING = web.AppKey("body_timing", BodyTiming)
_BODY = web.RequestKey("inferlab_body", bytes)
# ``Expect: 100-continue`` with a body larger than this route's limit: not invited (``api/expect``),
# refused by the middleware before any handler could wait for it
NOT_INVITED = web.RequestKey("inferlab_body_not_invited", int)


class BodyTimeout(RequestTimeout):
    """408, and the connection is not kept: the rest of the body will not be waited for."""

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Connection": "close"}


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the {limit} bytes this server accepts")


class Pieces:
    """A body as the pieces it arrived in, refused once their total passes ``limit``; joined once,
    at the end (no buffer grown and copied along the way)."""

    __slots__ = ("_limit", "_pieces", "size")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pieces: list[bytes] = []
        self.size = 0

    def add(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self._limit:
            raise too_large(self._limit)
        self._pieces.append(piece)

    def join(self) -> bytes:
        pieces = self._pieces
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class Inflater:
    """Streaming gzip/deflate decoding, ``PIECE`` bytes at a time, into a ``Pieces``."""

    def __init__(self, coding: str) -> None:
        self._gzip = coding != "deflate"
        self._decoder: zlib._Decompress | None = None

    def feed(self, data: bytes, out: Pieces) -> None:
        try:
            self._inflate(data, out)
        except zlib.error:
            message = f"The request body is not valid {self._name()} data"
            raise InvalidRequest(message, code="invalid_body") from None

    def finish(self) -> None:
        if self._decoder is not None and not self._decoder.eof:
            raise InvalidRequest(f"The {self._name()} request body is incomplete", code="invalid_body")

    def _name(self) -> str:
        return "gzip" if self._gzip else "deflate"

    def _inflate(self, data: bytes, out: Pieces) -> None:
        decoder = self._decoder
        while data or (decoder is not None and not decoder.eof):
            if decoder is None or decoder.eof:
                if decoder is not None and not self._gzip:  # gzip may hold several members, deflate not
                    raise zlib.error("data after the end of the deflate stream")
                decoder = self._decoder = self._start(data)
            piece = decoder.decompress(data, PIECE)
            if piece:
                out.add(piece)
            if decoder.eof:
                data = decoder.unused_data
            else:
                data = decoder.unconsumed_tail
                if not data and len(piece) < PIECE:
                    return  # all input taken, no output pending: wait for more

    def _start(self, first: bytes) -> zlib._Decompress:
        if self._gzip:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # RFC 9110's deflate is zlib-wrapped; some clients send raw deflate: tell by the first byte
        return zlib.decompressobj(zlib.MAX_WBITS if first[0] & 0x0F == 8 else -zlib.MAX_WBITS)


def _inflater(request: web.Request) -> Inflater | None:
    coding = request.headers.get(hdrs.CONTENT_ENCODING)
    if coding is None:
        return None
    coding = coding.strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip", "deflate"):
        return Inflater(coding)
    raise UnsupportedContentEncoding(
        f"Content-Encoding {coding!r} is not supported; send the body uncompressed, gzip or deflate"
    )


def _timing(request: web.Request) -> BodyTiming:
    timing = request.config_dict.get(BODY_TIMING)
    return timing if timing is not None else BodyTiming.of(ServerSettings.model_validate({}))  # a bare app


async def read_body(request: web.Request, limit: int | None = None) -> bytes:
    """The request body, decoded; ``limit`` defaults to the app's ``client_max_size``."""
    if _BODY in request:
        return request[_BODY]
    limit = request.client_max_size if limit is None else limit
    length = request.content_length
    if length is not None and length > limit:
        raise too_large(limit)
    body = await _receive(request, limit, _inflater(request))
    request[_BODY] = body
    return body


async def _receive(request: web.Request, limit: int, inflater: Inflater | None) -> bytes:
    content = request.content
    out = Pieces(limit)
    received = 0
    timing: BodyTiming | None = None  # looked up at the first wait: a body already in needs no clock
    started = 0.0
    try:
        while True:
            piece = content.read_nowait(PIECE)
            if not piece:
                if content.at_eof():
                    break
                if timing is None:  # nothing was awaited before: this is when reading started
                    timing = _timing(request)
                    started = asyncio.get_running_loop().time()
                async with asyncio.timeout_at(started + timing.timeout_s + received / timing.min_rate):
                    piece = await content.read(PIECE)
                if not piece:
                    break
            received += len(piece)
            if inflater is None:
                out.add(piece)
            elif received > limit:
                raise too_large(limit)
            else:
                inflater.feed(piece, out)
    except TimeoutError:
        assert timing is not None
        if isinstance(request.protocol, GuardedRequestHandler):
            request.protocol.abandon_body()  # too slow to send it: not waited for after the 408 either
        raise BodyTimeout(
            f"The request body did not arrive in time ({received} bytes in {timing.timeout_s:g} s"
            f" plus 1 s per {timing.min_rate:g} bytes)"
        ) from None
    except (ConnectionError, HttpProcessingError, web.RequestPayloadError):
        raise InvalidRequest("The request body was not received completely", code="invalid_body") from None
    if inflater is not None:
        inflater.finish()
    return out.join()
