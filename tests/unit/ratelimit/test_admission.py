"""Admission on its own: one batched renewal for every lease held, refusals classified before and
after the limiter, and a concurrency Retry-After from the observed hold times."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from inferlab.config import RateLimitSettings, load_settings
from inferlab.errors import QuotaExhausted, RateLimited, RequestExceedsLimit
from inferlab.ratelimit import Charge, Decision, MemoryRateLimiter
from inferlab.ratelimit.admission import Admission
from inferlab.ratelimit.holds import MAX_WAIT_S, HoldTimes
from inferlab.ratelimit.identity import Identity
from inferlab.ratelimit.policy import LimitPolicy

ALICE = Identity("k-alice", "u-alice", "t-1")


class Recording(MemoryRateLimiter):
    """The memory limiter, recording every call admission makes."""

    def __init__(self) -> None:
        super().__init__()
        self.acquired = 0
        self.renewals: list[int] = []

    async def acquire(self, lease: str, charges: Sequence[Charge]) -> Decision:
        self.acquired += 1
        return await super().acquire(lease, charges)

    async def renew(self, held: Sequence[tuple[str, str, float]]) -> int:
        self.renewals.append(len(held))
        return await super().renew(held)


def admission(limiter: Recording, now: list[float], **ratelimit: object) -> Admission:
    settings = RateLimitSettings.model_validate(ratelimit)
    return Admission(limiter, LimitPolicy(settings), clock=lambda: now[0])


async def test_one_renewal_call_for_every_lease_the_process_holds() -> None:
    limiter, now = Recording(), [0.0]
    gate = admission(limiter, now, limits=[{"scope": "key", "max_concurrent": 100}, {"scope": "tenant", "rpm": 1000}])
    tickets = [await gate.admit(ALICE, "m", 10, 10) for _ in range(40)]
    assert await gate.renew() == 40 and limiter.renewals == [40]  # one call; only the concurrency charges
    for ticket in tickets[:30]:
        assert ticket is not None
        await gate.finish(ticket, (1, 1))
    assert await gate.renew() == 10 and limiter.renewals == [40, 10]
    for ticket in tickets[30:]:
        assert ticket is not None
        await gate.finish(ticket, (1, 1))
    assert await gate.renew() == 0 and limiter.renewals == [40, 10]  # nothing held: no call at all


async def test_a_request_that_can_never_fit_is_refused_without_asking_the_limiter() -> None:
    limiter, now = Recording(), [0.0]
    gate = admission(limiter, now, limits=[{"scope": "key", "tpm": 1000}])
    with pytest.raises(RequestExceedsLimit) as refused:
        await gate.admit(ALICE, "m", 30, 2000)
    assert refused.value.status == 400 and refused.value.param == "max_tokens" and limiter.acquired == 0
    assert "2,030 tokens (~30 prompt + 2,000 completion)" in refused.value.message
    assert "tpm (scope key)" in refused.value.message and "1,000 tokens" in refused.value.message
    with pytest.raises(RequestExceedsLimit) as prompt_alone:
        await gate.admit(ALICE, "m", 1500, 0)
    assert prompt_alone.value.param is None


async def test_concurrency_retry_after_follows_the_hold_times_of_its_bucket() -> None:
    limiter, now = Recording(), [0.0]
    gate = admission(limiter, now, limits=[{"scope": "key", "max_concurrent": 2}], lease_ttl_s=900)
    for _ in range(5):  # requests of this key hold their slot 8 s
        first, second = await gate.admit(ALICE, "m", 1, 1), await gate.admit(ALICE, "m", 1, 1)
        now[0] += 8.0
        for ticket in (first, second):
            assert ticket is not None
            await gate.finish(ticket, (1, 1))
    assert await gate.admit(ALICE, "m", 1, 1) and await gate.admit(ALICE, "m", 1, 1)
    with pytest.raises(RateLimited) as busy:
        await gate.admit(ALICE, "m", 1, 1)
    assert busy.value.retry_after == pytest.approx(4.0)  # 2 slots held ~8 s: one frees every ~4 s
    assert busy.value.headers()["Retry-After"] == "4" and busy.value.headers()["retry-after-ms"] == "4000"


async def test_exhausted_and_busy_quotas_are_told_apart() -> None:
    limiter, now = Recording(), [0.0]
    settings = load_settings(overrides={"quota": {"limits": [{"scope": "key", "daily_tokens": 1000}]}})
    gate = Admission(limiter, LimitPolicy(settings.ratelimit, settings.quota.limits), clock=lambda: now[0])
    held = await gate.admit(ALICE, "m", 100, 500)
    with pytest.raises(RateLimited) as busy:  # 600 reserved in flight: it may settle lower
        await gate.admit(ALICE, "m", 100, 500)
    assert not isinstance(busy.value, QuotaExhausted) and busy.value.retry_after is not None
    assert "600 of it reserved by requests in progress" in busy.value.message
    assert held is not None
    await gate.finish(held, (100, 500))  # it really used all of it
    with pytest.raises(QuotaExhausted) as exhausted:
        await gate.admit(ALICE, "m", 100, 500)
    assert exhausted.value.retry_after is None and exhausted.value.headers()["x-should-retry"] == "false"
    assert exhausted.value.headers()["x-inferlab-quota-used"] == "600"
    assert "600 of 1,000 tokens used, none reserved" in exhausted.value.message
    assert "this request reserves 600 tokens" in exhausted.value.message


def test_hold_times_are_per_bucket_then_overall_and_bounded() -> None:
    holds = HoldTimes()
    assert holds.slot_frees_in("c:a", 4) == 1.0  # nothing seen: the 1 s floor
    holds.observe(["c:a"], 6.0)
    assert holds.slot_frees_in("c:a", 3) == 2.0 and holds.slot_frees_in("c:b", 1) == 6.0  # b: the overall mean
    holds.observe(["c:a"], 16.0)  # weighted: 6 + 0.2 * (16 - 6)
    assert holds.mean("c:a") == pytest.approx(8.0)
    holds.observe(["c:slow"], 3600.0)
    assert holds.slot_frees_in("c:slow", 1) == MAX_WAIT_S
    bounded = HoldTimes(max_buckets=10)
    for i in range(100):
        bounded.observe([f"c:{i}"], 1.0)
    assert len(bounded._by_bucket) <= 10  # the bound is the point
