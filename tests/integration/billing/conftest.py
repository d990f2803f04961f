"""localstripe for the Stripe adapter's tests: installed into a virtualenv of its own (once, cached)
and started from scratch once per session."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from inferlab.testing import localstripe
from inferlab.testing.needs import require


@pytest.fixture(scope="session")
def stripe_double() -> Iterator[localstripe.LocalStripe]:
    pytest.importorskip("stripe")
    try:
        localstripe.install()
    except (OSError, subprocess.CalledProcessError) as exc:
        require(False, f"localstripe could not be installed: {exc}")
    with localstripe.running() as server:
        yield server
