"""One repository's chunks, searchable by BM25 and by embeddings, fused by reciprocal rank.

``RepoIndex`` keeps what it indexed per path, so a new commit re-chunks only the files it
changed (``update``). A search never returns the file being edited and at most
``per_file`` chunks of any one file; BM25 and embedding rankings are fused with reciprocal rank
fusion (score = Σ 1/(60 + rank)), so a chunk found by either retriever can surface — no absolute
threshold has to be passed by both. Embeddings are optional: without an embedder (or before the
chunks are embedded) the ranking is BM25's alone.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from inferlab.code.bm25 import Bm25, symbol_terms, terms
from inferlab.code.chunking import Chunk, Chunker

RRF_K = 60
CURSOR_WEIGHT = 8.0
CANDIDATES = 40
EMBED_CHARS = 800
Embed = Callable[[list[str]], Awaitable[list[list[float]]]]
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float
    found_by: tuple[str, ...]


def cursor_query(prefix: str, suffix: str = "", *, lines: int = 12) -> dict[str, float]:
    """Query terms near the cursor: the cursor line's identifiers weigh most, then the lines above."""
    above = prefix.split("\n")[-lines:]
    weights: dict[str, float] = {}
    for distance, line in enumerate(reversed(above)):
        weight = 3.0 if distance == 0 else 1.0 / (1 + distance * 0.25)
        for term in terms(line):
            weights[term] = max(weights.get(term, 0.0), weight)
    for term in terms(suffix.split("\n", 1)[0]):
        weights[term] = max(weights.get(term, 0.0), 1.0)
    at_cursor = _IDENT.findall(above[-1])  # the name just typed (a call being written) matters most
    if at_cursor:
        for term in terms(at_cursor[-1]):
            weights[term] = CURSOR_WEIGHT
    return weights


def cursor_symbol(prefix: str) -> str | None:
    """The last name on the cursor's line (the call or attribute being written)."""
    names = _IDENT.findall(prefix.rsplit("\n", 1)[-1])
    return names[-1] if names else None


def query_text(prefix: str, suffix: str = "", *, lines: int = 12) -> str:
    return "\n".join(prefix.split("\n")[-lines:]) + suffix.split("\n", 1)[0]


@dataclass
class RepoIndex:
    name: str
    chunker: Chunker = field(default_factory=Chunker)
    commit: str | None = None
    _chunks: dict[int, Chunk] = field(default_factory=dict)
    _paths: dict[str, list[int]] = field(default_factory=dict)
    _bm25: Bm25 = field(default_factory=Bm25)
    _defines: dict[str, set[int]] = field(default_factory=dict)  # symbol name → chunks defining it
    _vectors: dict[int, list[float]] = field(default_factory=dict)
    _matrix: Any = None  # numpy rows of _vector_ids, rebuilt when vectors change
    _vector_ids: list[int] = field(default_factory=list)
    _next: int = 0

    @property
    def chunk_count(self) -> int:
        return len(self._chunks)

    @property
    def embedded(self) -> bool:
        return bool(self._vectors)

    @property
    def paths(self) -> list[str]:
        return sorted(self._paths)

    def chunks(self) -> list[Chunk]:
        return list(self._chunks.values())

    def chunks_of(self, path: str) -> list[Chunk]:
        return [self._chunks[i] for i in self._paths.get(path, [])]

    def prepare(self, files: Mapping[str, str]) -> dict[str, list[tuple[Chunk, list[str]]]]:
        """Chunks and their terms, per path: the CPU part of indexing, safe to run in a worker thread."""
        return {path: [(chunk, terms(chunk.path + "\n" + chunk.text) + symbol_terms(chunk.symbols))
                       for chunk in self.chunker.chunk(path, text)] for path, text in files.items()}

    def put_prepared(self, prepared: Mapping[str, list[tuple[Chunk, list[str]]]]) -> int:
        """Replace these paths' chunks (on the event loop: searches never see half an update)."""
        self.remove_paths(prepared)
        made = 0
        for path, chunks in prepared.items():
            ids = []
            for chunk, doc_terms in chunks:
                doc = self._next
                self._next += 1
                self._chunks[doc] = chunk
                self._bm25.add(doc, doc_terms)
                for symbol in chunk.symbols:
                    self._defines.setdefault(symbol.rsplit(".", 1)[-1], set()).add(doc)
                ids.append(doc)
            self._paths[path] = ids
            made += len(ids)
        return made

    def put_files(self, files: Mapping[str, str]) -> int:
        """(Re-)index these files' text; returns the chunks made."""
        return self.put_prepared(self.prepare(files))

    def remove_paths(self, paths: Iterable[str]) -> None:
        gone: set[int] = set()
        for path in paths:
            gone.update(self._paths.pop(path, []))
        for doc in gone:
            chunk = self._chunks.pop(doc, None)
            for symbol in chunk.symbols if chunk is not None else ():
                self._defines.get(symbol.rsplit(".", 1)[-1], set()).discard(doc)
            if self._vectors.pop(doc, None) is not None:
                self._matrix = None
        self._bm25.remove_many(gone)

    async def embed_missing(self, embed: Embed, *, batch: int = 16, chars: int = EMBED_CHARS) -> int:
        """Embed the chunks without a vector: their path and first ``chars`` characters (the
        signature and docstring say most; a whole chunk could pass an engine's batch size)."""
        missing = [doc for doc in self._chunks if doc not in self._vectors]
        for start in range(0, len(missing), batch):
            docs = missing[start:start + batch]
            texts = [f"{self._chunks[d].path}\n{self._chunks[d].text[:chars]}" for d in docs]
            for doc, vector in zip(docs, await embed(texts), strict=True):
                if doc in self._chunks:
                    self._vectors[doc] = vector
            self._matrix = None
        return len(missing)

    def _excluded(self, path: str | None) -> set[int]:
        return set(self._paths.get(path, [])) if path else set()

    def _vector_ranking(self, vector: list[float], exclude: set[int]) -> list[int]:
        if not self._vectors:
            return []
        import numpy as np

        if self._matrix is None:
            self._vector_ids = list(self._vectors)
            rows = np.asarray([self._vectors[d] for d in self._vector_ids], dtype=np.float32)
            self._matrix = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)
        query = np.asarray(vector, dtype=np.float32)
        scores = self._matrix @ (query / max(float(np.linalg.norm(query)), 1e-9))
        order = np.argsort(-scores)[: CANDIDATES + len(exclude)]
        return [self._vector_ids[i] for i in order if self._vector_ids[i] not in exclude][:CANDIDATES]

    def search(self, query: Mapping[str, float], *, exclude_path: str | None = None, limit: int = 8,
               per_file: int = 2, vector: list[float] | None = None, symbol: str | None = None) -> list[Hit]:
        """``symbol``: the name at the cursor; the chunks defining it form a ranking of their own."""
        exclude = self._excluded(exclude_path)
        bm25 = [doc for doc, _ in self._bm25.search(query, CANDIDATES, exclude)]
        rankings = {"bm25": bm25}
        defining = self._defines.get(symbol, set()) - exclude if symbol else set()
        if defining:
            order = {doc: rank for rank, doc in enumerate(bm25)}
            rankings["symbol"] = sorted(defining, key=lambda doc: (order.get(doc, CANDIDATES), doc))[:CANDIDATES]
        if vector is not None:
            rankings["embedding"] = self._vector_ranking(vector, exclude)
        fused: dict[int, float] = {}
        found: dict[int, list[str]] = {}
        for source, ranking in rankings.items():
            for rank, doc in enumerate(ranking, start=1):
                fused[doc] = fused.get(doc, 0.0) + 1.0 / (RRF_K + rank)
                found.setdefault(doc, []).append(source)
        hits: list[Hit] = []
        per_path: dict[str, int] = {}
        for doc, score in sorted(fused.items(), key=lambda item: -item[1]):
            chunk = self._chunks[doc]
            if per_path.get(chunk.path, 0) >= per_file:
                continue
            per_path[chunk.path] = per_path.get(chunk.path, 0) + 1
            hits.append(Hit(chunk, score, tuple(found[doc])))
            if len(hits) >= limit:
                break
        return hits
