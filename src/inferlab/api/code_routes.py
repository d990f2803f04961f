"""CodeLab's routes: editor completions, their accept/reject events, review and docs.

Each inference route translates its body onto a completion or chat ``Call`` with the parsed
CodeLab request as a note, and runs it through the same chain as the OpenAI routes
(``OpenAIRoutes.run``): keys, tiers, limits, quotas, the cache and metering apply unchanged;
the CodeLab steps (``code/``) do the rest. Events only count, so they call the telemetry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import orjson
from aiohttp import web

from inferlab.api.body import read_body
from inferlab.api.middleware import MODEL, REQUEST_ID, ROUTE, read_json
from inferlab.api.openai import OpenAIRoutes
from inferlab.api.routes import RouteSpec, Schema, add_routes
from inferlab.auth.policy import INFERENCE
from inferlab.code.assist import DOCS_NOTE, REVIEW_NOTE
from inferlab.code.build import CodeLab
from inferlab.code.completions import REQUEST_NOTE
from inferlab.code.docs import parse_docs
from inferlab.code.request import parse_code_completion
from inferlab.code.review import COMMENTS_SCHEMA, parse_review
from inferlab.code.telemetry import KINDS
from inferlab.errors import InvalidRequest
from inferlab.pipeline import Call, estimate_prompt_tokens
from inferlab.pipeline.usage import UsageMeter
from inferlab.types import Caller, RequestKind

_CONTEXT_ITEM = {"type": "object", "properties": {"filepath": {"type": "string"}, "body": {"type": "string"}},
                 "required": ["filepath", "body"]}
CODE_COMPLETION_REQUEST = Schema("CodeCompletionRequest", {
    "type": "object", "required": ["language", "prefix"],
    "properties": {
        "language": {"type": "string"}, "filepath": {"type": "string"}, "prefix": {"type": "string"},
        "suffix": {"type": "string"}, "git_url": {"type": "string"},
        "declarations": {"type": "array", "items": _CONTEXT_ITEM}, "snippets": {"type": "array", "items": _CONTEXT_ITEM},
        "model": {"type": "string"}, "tier": {"type": "string", "enum": ["small", "medium", "large"]},
        "max_tokens": {"type": "integer"}, "temperature": {"type": "number"}, "seed": {"type": "integer"},
        "mode": {"type": "string", "enum": ["auto", "single_line", "multi_line"]},
    },
})
CODE_COMPLETION = Schema("CodeCompletion", {
    "type": "object",
    "properties": {"id": {"type": "string"}, "completion_id": {"type": "string"}, "object": {"type": "string"},
                   "model": {"type": "string"}, "choices": {"type": "array"}, "usage": {"type": "object"},
                   "routing": {"type": "object"}},
})
CODE_EVENT = Schema("CodeEvent", {
    "type": "object", "required": ["type", "completion_id"],
    "properties": {"type": {"type": "string", "enum": sorted(KINDS)}, "completion_id": {"type": "string"},
                   "elapsed": {"type": "integer"}},
})
EVENT_RESULT = Schema("CodeEventResult", {"type": "object"})


REVIEW_REQUEST = Schema("CodeReviewRequest", {
    "type": "object", "required": ["diff"],
    "properties": {"diff": {"type": "string", "description": "a unified diff"}, "model": {"type": "string"},
                   "max_comments": {"type": "integer", "minimum": 1, "maximum": 20},
                   "tier": {"type": "string"}, "max_tokens": {"type": "integer"}, "stream": {"type": "boolean"}},
})
REVIEW = Schema("CodeReview", {"type": "object", "properties": {
    "object": {"const": "code.review"}, "model": {"type": "string"}, "comments": COMMENTS_SCHEMA["properties"]["comments"],
    "usage": {"type": "object"}}})
DOCS_REQUEST = Schema("CodeDocsRequest", {
    "type": "object", "required": ["language", "code"],
    "properties": {"language": {"type": "string"}, "code": {"type": "string"},
                   "kind": {"type": "string", "enum": ["docstring", "readme"]}, "model": {"type": "string"},
                   "tier": {"type": "string"}, "max_tokens": {"type": "integer"}, "stream": {"type": "boolean"}},
})
DOCS = Schema("CodeDocs", {"type": "object", "properties": {
    "object": {"const": "code.docs"}, "model": {"type": "string"}, "content": {"type": "string"},
    "convention": {"type": "string"}, "usage": {"type": "object"}}})
REPOSITORY_REQUEST = Schema("CodeRepositoryRequest", {
    "type": "object", "required": ["git_url"],
    "properties": {"git_url": {"type": "string", "description": "an absolute path or file:// URL on the gateway's machine"}},
})
REPOSITORY = Schema("CodeRepository", {"type": "object", "properties": {
    "git_url": {"type": "string"}, "commit": {"type": "string"}, "files": {"type": "integer"},
    "chunks": {"type": "integer"}, "reindexed_files": {"type": "integer"}, "full": {"type": "boolean"},
    "embedded": {"type": "integer", "description": "chunks embedded by this call"},
    "embedding_error": {"type": ["string", "null"], "description": "why embedding failed (BM25 still serves)"}}})
REPOSITORIES = Schema("CodeRepositoryList", {"type": "object", "properties": {"data": {"type": "array"}}})


class CodeRoutes:
    def __init__(self, inference: OpenAIRoutes, code: CodeLab,
                 caller_of: Callable[[web.Request], Caller], *, max_body_bytes: int, max_tokens: int) -> None:
        self._inference = inference
        self._code = code
        self._telemetry = code.telemetry
        self._caller_of = caller_of
        self._max_body_bytes = max_body_bytes
        self._max_tokens = max_tokens

    def routes(self) -> list[RouteSpec]:
        errors = (400, 404, 429, 502, 503, 504)
        return [
            RouteSpec("POST", "/v1/code/completions", self.completions, INFERENCE,
                      "Complete code at the cursor (fill-in-the-middle with repository context)", ("code",),
                      CODE_COMPLETION_REQUEST, CODE_COMPLETION, errors=errors),
            RouteSpec("POST", "/v1/code/events", self.events, INFERENCE,
                      "Report that a code completion was shown, accepted or rejected", ("code",),
                      CODE_EVENT, EVENT_RESULT, errors=(400, 404)),
            RouteSpec("POST", "/v1/code/review", self.review, INFERENCE,
                      "Review a unified diff: structured comments that point into the diff", ("code",),
                      REVIEW_REQUEST, REVIEW, errors=errors, streams=True),
            RouteSpec("POST", "/v1/code/docs", self.docs, INFERENCE,
                      "Write docstrings (in the language's convention) or a README section for code", ("code",),
                      DOCS_REQUEST, DOCS, errors=errors, streams=True),
            RouteSpec("POST", "/v1/code/repositories", self.index_repository, INFERENCE,
                      "Index (or re-index, changed files only) a repository for completion context", ("code",),
                      REPOSITORY_REQUEST, REPOSITORY, errors=(400, 429, 502, 503)),
            RouteSpec("GET", "/v1/code/repositories", self.list_repositories, INFERENCE,
                      "The caller's tenant's indexed repositories", ("code",), response=REPOSITORIES),
        ]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def completions(self, request: web.Request) -> web.StreamResponse:
        parsed = parse_code_completion(await read_json(request, self._max_body_bytes), max_tokens_limit=self._max_tokens)
        request[ROUTE] = "/v1/code/completions"
        request[MODEL] = parsed.model or "unknown"
        size = len(await read_body(request))
        call = Call(request_id=request[REQUEST_ID], kind=RequestKind.COMPLETION, route="/v1/code/completions",
                    model=parsed.model or "", body={}, caller=self._caller_of(request),
                    usage=UsageMeter(estimate_prompt_tokens(size)), notes={REQUEST_NOTE: parsed})
        try:
            return await self._inference.run(request, call)
        finally:
            request[MODEL] = call.model or "unknown"

    async def events(self, request: web.Request) -> web.Response:
        body = await read_json(request, self._max_body_bytes)
        if not isinstance(body, dict) or not isinstance(body.get("completion_id"), str) or not isinstance(
                body.get("type"), str):
            raise InvalidRequest("Expected {'type': ..., 'completion_id': ...}", code="invalid_body")
        caller = self._caller_of(request)
        issued = self._telemetry.record(body["completion_id"], body["type"], tenant=caller.tenant_id)
        tally = self._telemetry.tally(issued.model, issued.language)
        answer = {"completion_id": body["completion_id"], "model": issued.model, "language": issued.language,
                  "acceptance_rate": tally.acceptance_rate}
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def review(self, request: web.Request) -> web.StreamResponse:
        parsed = parse_review(await read_json(request, self._max_body_bytes))
        return await self._chat(request, "/v1/code/review", REVIEW_NOTE, parsed, parsed.model, parsed.stream)

    async def docs(self, request: web.Request) -> web.StreamResponse:
        parsed = parse_docs(await read_json(request, self._max_body_bytes))
        return await self._chat(request, "/v1/code/docs", DOCS_NOTE, parsed, parsed.model, parsed.stream)

    async def _chat(self, request: web.Request, route: str, note: str, parsed: object, model: str | None,
                    stream: bool) -> web.StreamResponse:
        request[ROUTE], request[MODEL] = route, model or "unknown"
        size = len(await read_body(request))
        call = Call(request_id=request[REQUEST_ID], kind=RequestKind.CHAT, route=route, model=model or "", body={},
                    caller=self._caller_of(request), stream=stream, usage=UsageMeter(estimate_prompt_tokens(size)),
                    notes={note: parsed})
        try:
            return await self._inference.run(request, call)
        finally:
            request[MODEL] = call.model or "unknown"

    async def index_repository(self, request: web.Request) -> web.Response:
        body = await read_json(request, self._max_body_bytes)
        if not isinstance(body, dict) or not isinstance(body.get("git_url"), str):
            raise InvalidRequest("Expected {'git_url': ...}", param="git_url", code="invalid_body")
        caller = self._caller_of(request)
        embedder = self._code.embedder
        embed = embedder.for_caller(caller, request[REQUEST_ID]) if embedder is not None else None
        report = await self._code.repos.index(caller.tenant_id, body["git_url"], embed)
        return web.Response(body=orjson.dumps(asdict(report)), content_type="application/json")

    async def list_repositories(self, request: web.Request) -> web.Response:
        caller = self._caller_of(request)
        data = [{"git_url": repo.source, "commit": repo.index.commit, "files": len(repo.index.paths),
                 "chunks": repo.index.chunk_count, "embedded": repo.index.embedded}
                for repo in self._code.repos.listed(caller.tenant_id)]
        return web.Response(body=orjson.dumps({"data": data}), content_type="application/json")
