"""How long requests hold what admission gave them: the basis of a busy limit's ``Retry-After``.

An exponentially weighted mean of the seconds from admission to settlement, per concurrency bucket
(one key's requests may last far longer than another's) and over every request. With ``limit``
slots each held ``mean`` seconds, one frees every ``mean / limit`` seconds on average: that is the
wait a concurrency 429 advertises. Reservations in flight (a busy quota) settle within about one
``mean``. Both are bounded to [``MIN_WAIT_S``, ``MAX_WAIT_S``]: whole seconds for ``Retry-After``,
and within the delay the ``openai`` SDK honours. The lease TTL plays no part: it only bounds how
long a crashed holder's slot stays taken.
"""

from __future__ import annotations

from collections.abc import Iterable

MIN_WAIT_S = 1.0
MAX_WAIT_S = 60.0


def _bounded(seconds: float) -> float:
    return min(MAX_WAIT_S, max(MIN_WAIT_S, seconds))


class HoldTimes:
    def __init__(self, *, weight: float = 0.2, default_s: float = 1.0, max_buckets: int = 10_000) -> None:
        self._weight = weight
        self._default_s = default_s
        self._max_buckets = max_buckets
        self._overall: float | None = None
        self._by_bucket: dict[str, float] = {}

    def _blend(self, old: float | None, held_s: float) -> float:
        return held_s if old is None else old + self._weight * (held_s - old)

    def observe(self, buckets: Iterable[str], held_s: float) -> None:
        self._overall = self._blend(self._overall, held_s)
        for key in buckets:
            if key not in self._by_bucket and len(self._by_bucket) >= self._max_buckets:
                self._by_bucket.clear()  # bounded: the means rebuild from the next requests
            self._by_bucket[key] = self._blend(self._by_bucket.get(key), held_s)

    def mean(self, bucket: str | None = None) -> float:
        """Seconds a request of ``bucket`` (None: any request) is held, by what was observed."""
        found = self._by_bucket.get(bucket) if bucket is not None else None
        if found is not None:
            return found
        return self._overall if self._overall is not None else self._default_s

    def slot_frees_in(self, bucket: str, limit: int) -> float:
        return _bounded(self.mean(bucket) / max(1, limit))

    def reservations_settle_in(self) -> float:
        return _bounded(self.mean())
