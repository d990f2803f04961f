"""What a test needs from the machine it runs on: missing, it is skipped — or fails under CI
(``CI=true``), so a missing install step or service can never hide behind a skip.

Imports pytest: for test code only (``inferlab.testing`` itself never imports this module).
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

__all__ = ["in_ci", "redis_available", "require", "shared_redis_url"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip the test when ``condition`` is false; fail it instead under CI."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


def shared_redis_url() -> str:
    """The Redis tests share: ``$INFERLAB_TEST_REDIS_URL``, else redis://127.0.0.1:6379/0."""
    return os.environ.get("INFERLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_available(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False
