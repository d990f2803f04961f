"""The one error of the evaluation package: bad input or a missing prerequisite, said plainly.

``inferlab eval`` prints its message and exits 2; nothing in a suite, the runner or the results
store raises anything else for a user's mistake (a server that fails a request is not an error of
the run: it becomes a failed :class:`~inferlab.evaluation.suite.ModelReply`).
"""

from __future__ import annotations

__all__ = ["EvaluationError"]


class EvaluationError(Exception):
    """A suite file, option or prerequisite is wrong; the message says what and how to fix it."""
