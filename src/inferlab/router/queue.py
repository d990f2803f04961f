"""The bounded per-model wait queue: requests that found every replica at its limit wait here.

Order is priority first (higher first; the hint the tier scheduler will set), then arrival.
Each waiter owns a future the pool resolves with a lease when capacity frees, or fails with a
503 when its wait expires or nothing healthy is left. Pure bookkeeping: the pool decides.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any

from inferlab.router.protocol import RoutingRequest


@dataclass(eq=False)
class Waiter:
    request: RoutingRequest
    exclude: frozenset[str]
    future: asyncio.Future[Any]
    enqueued_at: float
    seq: int = 0
    queued: bool = True
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class WaitQueue:
    def __init__(self, max_depth: int) -> None:
        if max_depth < 0:
            raise ValueError("max_depth must not be negative")
        self.max_depth = max_depth
        self._heap: list[tuple[int, int, Waiter]] = []
        self._seq = itertools.count()
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def full(self) -> bool:
        return self._live >= self.max_depth

    def push(self, waiter: Waiter) -> None:
        waiter.seq = next(self._seq)
        heapq.heappush(self._heap, (-waiter.request.priority, waiter.seq, waiter))
        self._live += 1

    def peek(self) -> Waiter | None:
        """The next live waiter (resolved or abandoned ones are dropped on the way)."""
        heap = self._heap
        while heap and not heap[0][2].queued:
            heapq.heappop(heap)
        return heap[0][2] if heap else None

    def pop(self) -> Waiter:
        """Take the next live waiter out (call after ``peek`` returned one)."""
        self.peek()
        waiter = heapq.heappop(self._heap)[2]
        self.remove(waiter)
        return waiter

    def remove(self, waiter: Waiter) -> None:
        """The waiter leaves the queue (served, timed out or cancelled); its heap entry goes lazily."""
        if waiter.queued:
            waiter.queued = False
            self._live -= 1

    def waiters(self) -> list[Waiter]:
        return sorted((entry[2] for entry in self._heap if entry[2].queued), key=lambda w: (-w.request.priority, w.seq))
