"""``Expect: 100-continue``: a body is invited only when the route would take it.

A client that declares a large body and asks first (curl does for large bodies) waits for ``100
Continue`` before sending it. aiohttp's own answer invites every body, so a 200 MB upload to a
route that takes 4 MiB was sent until the handler refused it. Here each route's declared limit
(``RouteSpec.max_body_bytes``, else the app's ``client_max_size``) is checked first: a body
declared larger is not invited. The request goes on to the middleware, which refuses it before
any handler could wait for that body (``body.NOT_INVITED``) — 413, OpenAI-shaped, with its request
id, metrics and access line like every other refusal — and the connection is closed after that
answer instead of waiting for a body that was never asked for. Any other expectation gets 417,
OpenAI-shaped, instead of aiohttp's text page.
"""

from __future__ import annotations

from aiohttp import HttpVersion11, web

from inferlab.api.body import NOT_INVITED
from inferlab.api.http_server import GuardedRequestHandler
from inferlab.api.middleware import error_response
from inferlab.errors import InvalidRequest

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


async def expect_continue(request: web.Request, *, limit: int | None = None) -> web.StreamResponse | None:
    """The route's ``expect_handler``: ``100 Continue`` for a body within ``limit`` (None: the app's
    ``client_max_size``), nothing for a larger one (the handler refuses it), 417 for an expectation
    other than ``100-continue``."""
    if request.version != HttpVersion11:
        return None  # HTTP/1.0 has no interim answers: the client sends its body anyway
    if request.headers.get("Expect", "").lower() != "100-continue":
        error = InvalidRequest("The only expectation this server meets is 'Expect: 100-continue'",
                               code="expectation_failed")
        error.status = 417
        response = error_response(error)
        response.force_close()
        return response
    limit = request.client_max_size if limit is None else limit
    length = request.content_length
    if length is not None and length > limit:
        request[NOT_INVITED] = limit  # the middleware refuses it (413) before any handler waits for it
        if isinstance(request.protocol, GuardedRequestHandler):
            request.protocol.abandon_body()  # not invited: close after the refusal, read none of it
        return None
    await request.writer.write(CONTINUE)
    request.writer.output_size = 0  # as aiohttp's own: the response proper has not started
    return None
