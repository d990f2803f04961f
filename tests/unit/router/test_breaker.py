from __future__ import annotations

from inferlab.router import BreakerPolicy, BreakerState, CircuitBreaker


def test_opens_after_consecutive_failures_and_backs_off_exponentially() -> None:
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=3, ejection_base_s=1, ejection_max_s=5, probe_gated=False))
    assert not breaker.on_failure(0) and not breaker.on_failure(0)
    breaker.on_success()  # not consecutive any more
    assert not breaker.on_failure(0) and not breaker.on_failure(0)
    assert breaker.on_failure(0) and breaker.state is BreakerState.OPEN
    assert not breaker.allows(0.5) and breaker.retry_in(0.5) == 0.5
    assert breaker.allows(1.0) and breaker.state is BreakerState.HALF_OPEN
    breaker.on_dispatch()
    assert not breaker.allows(1.0)  # one trial at a time
    assert breaker.on_failure(1.0)  # trial failed: open again, twice as long
    assert breaker.open_until == 3.0
    breaker.allows(3.0)
    breaker.on_dispatch()
    breaker.on_failure(3.0)
    assert breaker.open_until == 7.0  # 4 s
    breaker.allows(7.0)
    breaker.on_dispatch()
    breaker.on_failure(7.0)
    assert breaker.open_until == 12.0  # capped at 5 s
    breaker.allows(12.0)
    breaker.on_dispatch()
    breaker.on_success()
    assert breaker.state is BreakerState.CLOSED and breaker.ejections == 0


def test_probe_gated_half_open_needs_a_healthy_probe() -> None:
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=1, ejection_base_s=1))
    breaker.on_failure(0)
    assert not breaker.allows(2.0) and breaker.probe_due(2.0)
    breaker.on_probe(False, 2.0)  # still down: ejected again, longer
    assert breaker.open_until == 4.0 and not breaker.allows(4.5)
    breaker.on_probe(True, 4.5)
    assert breaker.allows(4.5) and breaker.state is BreakerState.HALF_OPEN


def test_neutral_outcome_frees_the_trial() -> None:
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=1, probe_gated=False))
    breaker.on_failure(0)
    breaker.allows(10)
    breaker.on_dispatch()
    breaker.on_neutral()
    assert breaker.allows(10)
