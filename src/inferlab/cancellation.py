"""Cancelling a task once on a deadline or from outside, and knowing afterwards it was that.

``asyncio.timeout`` does this with a context manager, its state machine and a timer handle per
use; on the request path (every attempt's deadline, every request's drain tracking) a plain
object is enough: ``fire`` cancels the task once, ``caused`` says whether a ``CancelledError``
leaving it is this one's and nobody else's on top of it, and takes the cancellation back.
"""

from __future__ import annotations

import asyncio


class Canceller:
    __slots__ = ("_cancelling", "_task", "fired")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self._task = task
        self._cancelling = task.cancelling()  # cancellations already pending when it was made
        self.fired = False

    def fire(self) -> None:
        if not self.fired:
            self.fired = True
            self._task.cancel()

    def caused(self) -> bool:
        """Once fired: take the cancellation back; True when no other one is pending (call it as
        the ``CancelledError`` leaves, at most once)."""
        return self.fired and self._task.uncancel() <= self._cancelling


def current_canceller() -> Canceller:
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("a Canceller is made inside a task")
    return Canceller(task)
