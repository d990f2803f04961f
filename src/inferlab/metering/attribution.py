"""Hardware cost attribution: a replica's busy time, priced, split over the requests it served.

Pure integer arithmetic, so the result is exact and the same whatever order the events come in:

1. Time is cut into fixed intervals of ``interval_us`` per replica (aligned on the epoch).
2. A request occupied its replica over its *service span* ``[end − service, end)`` (its duration
   less the time it waited in the gateway's queue). The replica's busy time in an interval is the
   length of the union of the spans, clipped to the interval — concurrent requests are not
   counted twice, idle time is not counted at all.
3. The interval's cost is ``busy µs × hourly rate ÷ 3.6·10⁹``, rounded half-even to whole quanta
   (``QUANTUM``, a nano-dollar).
4. Each request's tokens are spread over its span: the intervals it touches get shares in
   proportion to their overlap with it, as whole tokens (largest remainder; ties to the earlier
   interval), so a request's shares sum to its tokens.
5. The interval's quanta are split over its requests in proportion to those token shares (by
   overlap when none of them has a token): each gets the floor of its exact share, and the quanta
   left over go one each to the largest remainders, ties by request id. The parts sum exactly to
   the interval's cost; a request's hardware cost is the sum of its parts.

Vectorised with numpy over integer arrays (a million requests in about a second); products that
could pass 2⁶² are computed on Python integers instead, so no step can overflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

US_PER_HOUR = 3_600_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch (exact: no float)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class Span:
    """One request on one replica: ``[start_us, end_us)`` and its tokens."""

    id: str
    start_us: int
    end_us: int
    tokens: int


@dataclass(frozen=True, slots=True)
class IntervalCost:
    start_us: int
    busy_us: int
    quanta: int  # the interval's cost in quanta
    parts: dict[str, int] = field(default_factory=dict)  # request id → quanta


Array = np.ndarray[Any, Any]
SAFE = 2**62


def interval_quanta(busy_us: int, quanta_per_hour: int) -> int:
    """``busy_us × quanta_per_hour ÷ 3.6·10⁹`` rounded half-even."""
    whole, rest = divmod(busy_us * quanta_per_hour, US_PER_HOUR)
    return whole + int(rest * 2 > US_PER_HOUR or (rest * 2 == US_PER_HOUR and whole % 2 == 1))


def _divmod(numerator: Array, denominator: Array | int) -> tuple[Array, Array]:
    return np.asarray(numerator // denominator), np.asarray(numerator % denominator)  # np.divmod has no object (Python int) loop


def _half_even(numerator: Array, denominator: Array | int) -> Array:
    whole, rest = _divmod(numerator, denominator)
    up = (rest * 2 > denominator) | ((rest * 2 == denominator) & (whole % 2 == 1))
    return np.asarray(whole + up)


def _product(a: Array, b: Array) -> Array:
    """``a × b`` elementwise, on Python integers when int64 could overflow."""
    if len(a) and int(np.abs(a).max()) * int(np.abs(b).max()) >= SAFE:
        return np.asarray(a.astype(object) * b.astype(object))
    return np.asarray(a * b)


def _ranks(groups: Array, *keys: Array) -> Array:
    """Each element's rank within its group (groups contiguous and ascending), ordered by ``keys``
    (the first most significant)."""
    order = np.lexsort((*reversed(keys), groups))
    starts = np.r_[0, np.flatnonzero(np.diff(groups[order])) + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order)) - np.repeat(starts, sizes)
    return ranks


def apportion(total: int, weights: Sequence[int], keys: Sequence[str]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (Σ > 0): floors, then the leftover units one
    each to the largest remainders, ties by ``keys`` ascending. Sums exactly to ``total``."""
    whole = sum(weights)
    shares = [total * weight // whole for weight in weights]
    left = total - sum(shares)
    if left:
        order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), keys[i]))
        for index in order[:left]:
            shares[index] += 1
    return shares


def busy_us(start_us: int, end_us: int, spans: Iterable[tuple[int, int]]) -> int:
    """Length of the union of ``spans`` clipped to ``[start_us, end_us)``."""
    busy, reach = 0, start_us
    for begin, end in sorted(spans):
        start, stop = max(begin, reach), min(end, end_us)
        if stop > start:
            busy += stop - start
            reach = stop
    return busy


@dataclass(frozen=True)
class Attribution:
    """The result over one replica's spans, as arrays: per interval, per piece (a span's part of
    one interval) and per span (in the order given)."""

    interval_start: Array  # µs since the epoch, ascending
    interval_busy: Array  # µs
    interval_quanta: Array
    piece_span: Array  # index of the span in the input
    piece_interval: Array  # index into interval_*
    piece_quanta: Array
    span_quanta: Array  # Σ of each span's pieces (0 for an empty span)

    def intervals(self, ids: Sequence[str]) -> dict[int, IntervalCost]:
        found = {int(s): IntervalCost(int(s), int(b), int(q)) for s, b, q in
                 zip(self.interval_start, self.interval_busy, self.interval_quanta, strict=True)}
        starts = self.interval_start.tolist()
        for span, interval, part in zip(self.piece_span.tolist(), self.piece_interval.tolist(),
                                        self.piece_quanta.tolist(), strict=True):
            parts = found[starts[interval]].parts
            parts[ids[span]] = parts.get(ids[span], 0) + int(part)
        return found


def attribute_arrays(ids: Sequence[str], begin: Array, end: Array, tokens: Array, interval_us: int,
                     quanta_per_hour: int) -> Attribution:
    """The attribution of one replica's spans ``[begin, end)`` (µs) with their tokens."""
    begin, end, tokens = (np.asarray(x, dtype=np.int64) for x in (begin, end, tokens))
    kept = np.flatnonzero(end > begin)
    b, e, t = begin[kept], end[kept], tokens[kept]
    first = b // interval_us * interval_us
    count = (e - 1 - first) // interval_us + 1
    starts = np.cumsum(count) - count
    span = np.repeat(np.arange(len(b)), count)  # each piece's span (index into kept)
    step = np.arange(len(span)) - np.repeat(starts, count)  # the piece's place within its span
    piece_start = first[span] + step * interval_us
    piece_begin = np.maximum(b[span], piece_start)
    piece_end = np.minimum(e[span], piece_start + interval_us)
    overlap = piece_end - piece_begin
    piece_tokens = _token_shares(t[span], overlap, (e - b)[span], span, step, t, starts) \
        if len(span) > len(b) else t[span]
    # busy time per interval: pieces by (interval, begin); the running reach of the ends never
    # passes an interval's start before that interval, so one running maximum serves them all
    order = np.lexsort((piece_begin, piece_start))
    sorted_begin, sorted_end = piece_begin[order], piece_end[order]
    reach = np.r_[np.iinfo(np.int64).min, np.maximum.accumulate(sorted_end)[:-1]] if len(order) else sorted_end
    contribution = np.clip(sorted_end - np.maximum(sorted_begin, reach), 0, None)
    interval_start, group_first, group = np.unique(piece_start[order], return_index=True, return_inverse=True)
    busy = np.add.reduceat(contribution, group_first) if len(order) else contribution
    quanta = _half_even(_product(busy, np.full(len(busy), quanta_per_hour, dtype=np.int64)),
                        US_PER_HOUR).astype(np.int64)
    parts = _split(quanta, group, group_first, piece_tokens[order], overlap[order], kept[span[order]], ids)
    span_quanta = np.zeros(len(begin), dtype=parts.dtype)
    np.add.at(span_quanta, kept[span[order]], parts)
    return Attribution(interval_start, busy, quanta, kept[span[order]], group, parts, span_quanta)


def _token_shares(tokens: Array, overlap: Array, length: Array, span: Array, step: Array, span_tokens: Array,
                  starts: Array) -> Array:
    """Each span's tokens over its pieces by overlap: floors, leftovers to the largest remainders
    (ties to the earlier piece)."""
    whole, rest = _divmod(_product(tokens, overlap), length)
    whole, rest = whole.astype(np.int64), rest.astype(np.int64)
    left = span_tokens - np.add.reduceat(whole, starts)
    return np.asarray(whole + (_ranks(span, -rest, step) < left[span]))


def _split(quanta: Array, group: Array, group_first: Array, weights: Array, overlap: Array, span_index: Array,
           ids: Sequence[str]) -> Array:
    """Each interval's quanta over its pieces by weight (by overlap where an interval's weights are
    all zero): floors, leftovers to the largest remainders, ties by request id."""
    if not len(group):
        return np.zeros(0, dtype=np.int64)
    total_weight = np.add.reduceat(weights, group_first)
    by_time = total_weight == 0
    if by_time.any():
        weights = np.where(by_time[group], overlap, weights)
        total_weight = np.add.reduceat(weights, group_first)
    whole, rest = _divmod(_product(quanta[group], weights), total_weight[group])
    whole, rest = whole.astype(np.int64), rest.astype(np.int64)  # below the quanta / the weights
    left = quanta - np.add.reduceat(whole, group_first)
    return np.asarray(whole + (_ranks(group, -rest, _id_ranks(ids)[span_index]) < left[group]))


def _id_ranks(ids: Sequence[str]) -> Array:
    """Each id's place in ascending order of the ids."""
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[np.array(sorted(range(len(ids)), key=ids.__getitem__), dtype=np.int64)] = np.arange(len(ids))
    return ranks


def attribute(spans: Iterable[Span], interval_us: int, quanta_per_hour: int) -> dict[int, IntervalCost]:
    """Every interval the spans touch (one replica), with its cost and parts."""
    listed = list(spans)
    ids = [s.id for s in listed]
    result = attribute_arrays(ids, np.array([s.start_us for s in listed], dtype=np.int64),
                              np.array([s.end_us for s in listed], dtype=np.int64),
                              np.array([s.tokens for s in listed], dtype=np.int64), interval_us, quanta_per_hour)
    return result.intervals(ids)
