"""BM25 over code chunks, with documents added and removed in place (incremental re-indexing).

Terms are identifiers, lower-cased, plus their parts (``snake_case`` and ``camelCase`` split);
a chunk's own symbol names count several times, so the chunk that *defines* a name outranks
the many that merely use it. A query carries a weight per term (the identifiers nearest the
cursor weigh most).
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
SYMBOL_WEIGHT = 5
K1, B = 1.2, 0.75
MAX_QUERY_TERMS = 12
_STOP = frozenset({"self", "def", "return", "if", "else", "for", "in", "import", "from", "none", "true", "false",
                   "the", "and", "or", "not", "is", "class", "const", "let", "var", "function", "this", "new"})


def terms(text: str) -> list[str]:
    out: list[str] = []
    for word in _IDENT.findall(text):
        lower = word.lower()
        if lower in _STOP or len(lower) < 2:
            continue
        out.append(lower)
        parts = [p.lower() for piece in word.split("_") for p in _CAMEL.findall(piece)]
        if len(parts) > 1:
            out += [p for p in parts if len(p) > 2 and p not in _STOP]
    return out


def symbol_terms(symbols: Iterable[str]) -> list[str]:
    out: list[str] = []
    for symbol in symbols:
        out += [symbol.rsplit(".", 1)[-1].lower()] * SYMBOL_WEIGHT
    return out


class Bm25:
    def __init__(self) -> None:
        self._postings: dict[str, dict[int, int]] = {}
        self._lengths: dict[int, int] = {}
        self._total = 0

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, doc: int, doc_terms: list[str]) -> None:
        self.remove(doc)
        counts = Counter(doc_terms)
        for term, count in counts.items():
            self._postings.setdefault(term, {})[doc] = count
        self._lengths[doc] = len(doc_terms)
        self._total += len(doc_terms)

    def remove(self, doc: int) -> None:
        length = self._lengths.pop(doc, None)
        if length is None:
            return
        self._total -= length
        for term in list(self._postings):
            posting = self._postings[term]
            if posting.pop(doc, None) is not None and not posting:
                del self._postings[term]

    def remove_many(self, docs: set[int]) -> None:
        if not docs:
            return
        for doc in docs:
            self._total -= self._lengths.pop(doc, 0)
        for term in list(self._postings):
            posting = self._postings[term]
            for doc in docs & posting.keys():
                del posting[doc]
            if not posting:
                del self._postings[term]

    def search(self, query: Mapping[str, float], limit: int, exclude: set[int] | None = None,
               max_terms: int = MAX_QUERY_TERMS) -> list[tuple[int, float]]:
        """The best ``limit`` documents; only the ``max_terms`` query terms of most weight × idf count
        (a long cursor window's common words cost time and add noise)."""
        count = len(self._lengths)
        if not count:
            return []
        average = self._total / count or 1.0
        weighted = []
        for term, weight in query.items():
            posting = self._postings.get(term)
            if posting:
                idf = math.log(1 + (count - len(posting) + 0.5) / (len(posting) + 0.5))
                weighted.append((weight * idf, term, posting))
        weighted.sort(key=lambda item: -item[0])
        scores: dict[int, float] = {}
        lengths = self._lengths
        shape = K1 * (1 - B)
        per_length = K1 * B / average
        for factor, _, posting in weighted[:max_terms]:
            top = factor * (K1 + 1)
            for doc, tf in posting.items():
                scores[doc] = scores.get(doc, 0.0) + top * tf / (tf + shape + per_length * lengths[doc])
        if exclude:
            for doc in exclude:
                scores.pop(doc, None)
        return heapq.nlargest(limit, scores.items(), key=lambda item: item[1])
