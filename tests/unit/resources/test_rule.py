"""The admission rule by hand: guarantees, borrowing, limits, overbooked pools, changed shares."""

from __future__ import annotations

import pytest

from inferlab.errors import InvalidRequest
from inferlab.resources import ZERO, Amount, PoolCapacity, PoolConfig, PoolTotals, TenantShare, decide
from inferlab.resources.rule import borrowed_part, committed_change, committed_total


def totals(capacity: tuple[int, int], in_flight: tuple[int, int] = (0, 0), committed: tuple[int, int] = (0, 0)) -> PoolTotals:
    return PoolTotals(Amount(*capacity), Amount(*in_flight), Amount(*committed))


GOLD = TenantShare(Amount(4, 400), Amount(8, 800))


def test_within_the_guarantee_fits_even_when_no_capacity_is_idle() -> None:
    # 10 sequences: gold's 4 are kept for it while others hold the other 6
    pool = totals((10, 1000), in_flight=(6, 600), committed=(10, 1000))
    assert decide(pool, ZERO, GOLD, Amount(1, 100)) == ZERO
    assert decide(pool, Amount(3, 300), GOLD, Amount(1, 100)) == ZERO  # the 4th, still within
    assert decide(pool, Amount(4, 400), GOLD, Amount(1, 100)) == "pool_full"  # the 5th would borrow


def test_borrowing_takes_only_idle_capacity() -> None:
    pool = totals((10, 1000), in_flight=(2, 200), committed=(6, 600))  # gold holds nothing; 4 idle
    assert decide(pool, ZERO, TenantShare(), Amount(1, 100)) == Amount(1, 100)  # all borrowed
    assert decide(pool, ZERO, TenantShare(), Amount(1, 401)) == "pool_full"  # 401 KV tokens: 400 idle


def test_a_request_straddling_the_guarantee_borrows_its_excess_only() -> None:
    pool = totals((10, 1000), in_flight=(3, 350), committed=(5, 500))
    assert decide(pool, Amount(3, 350), GOLD, Amount(1, 100)) == Amount(0, 50)
    assert borrowed_part(Amount(3, 350), Amount(1, 100), GOLD.guarantee) == Amount(0, 50)
    assert borrowed_part(Amount(6, 600), Amount(1, 100), GOLD.guarantee) == Amount(1, 100)


def test_the_limit_is_never_passed() -> None:
    pool = totals((100, 10_000))
    assert decide(pool, Amount(7, 700), GOLD, Amount(1, 100)) == Amount(1, 100)
    assert decide(pool, Amount(8, 700), GOLD, Amount(1, 100)) == "tenant_limit"
    assert decide(pool, Amount(7, 701), GOLD, Amount(1, 100)) == "tenant_limit"


def test_a_tenant_that_may_not_borrow() -> None:
    fixed = TenantShare(Amount(2, 200), may_borrow=False)
    pool = totals((100, 10_000))
    assert decide(pool, Amount(1, 100), fixed, Amount(1, 100)) == ZERO
    assert decide(pool, Amount(2, 200), fixed, Amount(1, 10)) == "no_borrowing"
    assert decide(pool, ZERO, fixed, Amount(1, 201)) == "request_too_large"  # can never fit


def test_a_request_larger_than_any_ceiling_can_never_fit() -> None:
    pool = totals((10, 1000))
    assert decide(pool, ZERO, TenantShare(), Amount(1, 1001)) == "request_too_large"
    assert decide(pool, ZERO, GOLD, Amount(1, 801)) == "request_too_large"
    assert decide(totals((0, 0)), ZERO, TenantShare(), Amount(1, 0)) == "request_too_large"


def test_an_overbooked_pool_admits_within_guarantees_first_come_and_never_past_its_capacity() -> None:
    b = TenantShare(Amount(8, 800))  # and tenant a has the same guarantee
    # capacity 10, guarantees 16: a holds 8; committed = 8 (a) + 8 (b kept) = 16 > 10
    pool = totals((10, 1000), in_flight=(8, 800), committed=(16, 1600))
    assert decide(pool, ZERO, b, Amount(1, 100)) == ZERO  # fits: 9 in flight
    full = totals((10, 1000), in_flight=(10, 900), committed=(16, 1600))
    assert decide(full, Amount(2, 100), b, Amount(1, 10)) == "overbooked"  # within b's guarantee, but no room
    assert decide(pool, ZERO, TenantShare(), Amount(1, 10)) == "pool_full"  # nobody borrows


def test_a_share_changed_while_held_applies_to_the_next_admission() -> None:
    held = Amount(6, 600)
    pool = totals((10, 1000), in_flight=(6, 600), committed=(6, 600))
    assert decide(pool, held, TenantShare(limit=Amount(8, 800)), Amount(1, 100)) == Amount(1, 100)
    assert decide(pool, held, TenantShare(limit=Amount(4, 800)), Amount(1, 100)) == "tenant_limit"
    raised = TenantShare(Amount(8, 800))  # the same held amount is now within a larger guarantee
    assert decide(totals((10, 1000), (6, 600), (8, 800)), held, raised, Amount(1, 100)) == ZERO


def test_the_committed_sum_counts_held_or_guaranteed_whichever_is_larger() -> None:
    assert committed_total({"a": Amount(2, 300), "b": Amount(5, 50)}, {"a": Amount(4, 100), "c": Amount(1, 1)}) \
        == Amount(4 + 5 + 1, 300 + 50 + 1)
    assert committed_change(Amount(3, 300), Amount(5, 500), Amount(4, 400)) == (1, 100)
    assert committed_change(Amount(5, 500), Amount(2, 200), Amount(4, 400)) == (-1, -100)


def test_overcommit_scales_and_floors_the_capacity() -> None:
    assert PoolCapacity(4, 1001, 1.5).effective == Amount(6, 1501)
    assert PoolCapacity(3, 1000, 0.5).effective == Amount(1, 500)


@pytest.mark.parametrize("build", [
    lambda: Amount(-1, 0),
    lambda: PoolCapacity(1, 1, 0.0),
    lambda: PoolCapacity(1, 1, float("nan")),
    lambda: TenantShare(Amount(5, 5), Amount(4, 10)),
    lambda: PoolConfig(PoolCapacity(1, 1), default_share=TenantShare(Amount(1, 0))),
])
def test_impossible_terms_are_refused_with_a_clear_error(build: object) -> None:
    with pytest.raises(InvalidRequest):
        build()  # type: ignore[operator]


def test_the_pool_reports_its_overbooking() -> None:
    config = PoolConfig(PoolCapacity(10, 1000), {"a": TenantShare(Amount(8, 100)), "b": TenantShare(Amount(8, 100))})
    assert config.guaranteed == Amount(16, 200) and config.overbooked == Amount(6, 0)
    assert config.share_of("nobody") == TenantShare()
