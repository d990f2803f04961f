"""The repository-context step: chunks of other files of the caller's own index, found from the
code at the cursor, put in front of the FIM prompt within a token budget.

The editor's own declarations and snippets come first (the code/completions step left them);
retrieved chunks fill what remains of ``budget_tokens``, best first, never from the file being
edited, at most ``max_hits_per_file`` per file. The FIM step lays them out in the family's
repo-level format. Embeddings of the query come from InferLab's own ``/v1/embeddings`` — the
same chain, so the tenant's limits and metering apply to them too (``ChainEmbedder``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson

from inferlab.code.completions import HITS_NOTE, REQUEST_NOTE
from inferlab.code.fim import ContextFile
from inferlab.code.repo_index import Embed, Hit, cursor_query, cursor_symbol, query_text
from inferlab.code.repositories import RepoIndexes
from inferlab.code.request import CodeCompletionRequest
from inferlab.code.step import CONTEXT_NOTE, FimContext
from inferlab.config import RepoContextSettings
from inferlab.errors import InferLabError
from inferlab.pipeline import SUCCESS, Call, Chain, Next, Reply
from inferlab.types import Caller, RequestKind

CHARS_PER_TOKEN = 3  # code tokenises denser than prose: a budget in tokens stays a bound

log = logging.getLogger("inferlab.code")


def tokens_of(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def within_budget(given: tuple[ContextFile, ...], hits: list[Hit], budget: int) -> tuple[ContextFile, ...]:
    """The editor's files first, then hits best first, while they fit (a hit that does not is skipped)."""
    files = list(given)
    left = budget - sum(tokens_of(f.path) + tokens_of(f.text) for f in given)
    for hit in hits:
        cost = tokens_of(hit.chunk.path) + tokens_of(hit.chunk.text)
        if cost <= left:
            files.append(ContextFile(hit.chunk.path, hit.chunk.text))
            left -= cost
    return tuple(files)


class ChainEmbedder:
    """Embeddings through the gateway's own chain, on behalf of a caller (so they are metered)."""

    def __init__(self, chain: Callable[[], Chain], model: str) -> None:
        self._chain = chain
        self._model = model
        self._ids = itertools.count()

    def for_caller(self, caller: Caller, request_id: str) -> Embed:
        async def embed(texts: list[str]) -> list[list[float]]:
            call = Call(request_id=f"{request_id}-embed-{next(self._ids)}", kind=RequestKind.EMBEDDING,
                        route="/v1/embeddings", model=self._model, body={"model": self._model, "input": texts},
                        caller=caller)
            reply = await self._chain()(call)
            await call.end(SUCCESS)
            body: Any = orjson.loads(reply.replay) if reply.replay is not None else reply.response.body  # type: ignore[union-attr]
            data = sorted(body["data"], key=lambda item: item["index"])
            return [item["embedding"] for item in data]

        return embed


class RepoContext:
    def __init__(self, indexes: RepoIndexes, settings: RepoContextSettings, embedder: ChainEmbedder | None) -> None:
        self._indexes = indexes
        self._settings = settings
        self._embedder = embedder

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        request = call.notes.get(REQUEST_NOTE)
        if isinstance(request, CodeCompletionRequest) and request.git_url and self._settings.enabled:
            await self._add_context(call, request)
        return await call_next(call)

    async def _add_context(self, call: Call, request: CodeCompletionRequest) -> None:
        index = self._indexes.get(call.caller.tenant_id, request.git_url or "")
        if index is None:
            return
        vector = None
        if self._embedder is not None and index.embedded:
            embed = self._embedder.for_caller(call.caller, call.request_id)
            try:
                vector = (await asyncio.wait_for(embed([query_text(request.prefix, request.suffix)]),
                                                 self._settings.query_embed_timeout_s))[0]
            except (InferLabError, TimeoutError) as exc:  # BM25 alone rather than no completion
                log.info("query embedding skipped: %s", exc)
        hits = index.search(cursor_query(request.prefix, request.suffix), exclude_path=request.filepath,
                            limit=self._settings.max_hits, per_file=self._settings.max_hits_per_file, vector=vector,
                            symbol=cursor_symbol(request.prefix))
        context = call.notes.get(CONTEXT_NOTE)
        context = context if isinstance(context, FimContext) else FimContext()
        files = within_budget(context.files, hits, self._settings.budget_tokens)
        call.notes[CONTEXT_NOTE] = replace(context, files=files, repo=context.repo or index.name)
        call.notes[HITS_NOTE] = [{"filepath": h.chunk.path, "start_line": h.chunk.start_line,
                                  "end_line": h.chunk.end_line, "score": round(h.score, 5), "found_by": h.found_by}
                                 for h in hits]
