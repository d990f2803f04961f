"""The scheduling policies as pure decision logic: waiters in, the next one out, on a fake clock.

A small service loop plays the pool: it takes the policy's next waiter, charges it as the queue
does (``dispatched``) and reports its real usage when it ends (``finished``), with one slot, so
the order of service is exactly the order of decisions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest

from inferlab.router import RoutingRequest
from inferlab.scheduler import FifoPolicy, LayeredPolicy, LocalCounters, SchedulingPolicy, make_policy


@dataclass(eq=False)
class W:
    request: RoutingRequest
    enqueued_at: float
    seq: int
    exclude: frozenset[str] = frozenset()
    queued: bool = True
    tag: str = ""


@dataclass
class Loop:
    """One slot in front of a policy: waiters join, the next one is served, its usage reported."""

    policy: SchedulingPolicy
    now: float = 0.0
    seq: int = 0
    served: list[W] = field(default_factory=list)
    tokens: Counter[str] = field(default_factory=Counter)

    def join(self, tenant: str = "t", priority: int = 1, *, weight: float = 1.0, deadline: float | None = None,
             prompt: int = 10, max_tokens: int | None = 10, tag: str = "") -> W:
        request = RoutingRequest({}, priority=priority, tenant=tenant, weight=weight, deadline=deadline,
                                 prompt_tokens=prompt, max_tokens=max_tokens)
        waiter = W(request, self.now, self.seq, tag=tag or tenant)
        self.seq += 1
        self.policy.push(waiter)
        return waiter

    def serve(self, completion: int = 10, seconds: float = 0.0) -> W:
        waiter = self.policy.peek(self.now)
        assert isinstance(waiter, W)
        waiter.queued = False
        self.policy.remove(waiter)
        request = waiter.request
        request.dispatched_at = self.now
        self.policy.dispatched(request)
        self.now += seconds
        self.policy.finished(request, request.prompt_tokens, completion)
        self.served.append(waiter)
        self.tokens[request.tenant] += request.prompt_tokens + completion
        return waiter


def tiered(aging_s: float | None = None) -> LayeredPolicy:
    policy = make_policy("tiered", aging_s=aging_s, horizon_s=30.0)
    assert isinstance(policy, LayeredPolicy)
    return policy


def test_strict_priority_serves_the_highest_class_first_then_arrival() -> None:
    loop = Loop(make_policy("priority", aging_s=None, horizon_s=30.0))
    for tag, priority in [("low-0", 0), ("normal-0", 1), ("low-1", 0), ("high-0", 2), ("normal-1", 1)]:
        loop.join(tag, priority, tag=tag)
    order = [loop.serve().tag for _ in range(5)]
    assert order == ["high-0", "normal-0", "normal-1", "low-0", "low-1"]


def test_fifo_is_arrival_order_whatever_the_class() -> None:
    loop = Loop(FifoPolicy())
    for tag, priority in [("a", 0), ("b", 3), ("c", 1)]:
        loop.join(tag, priority, tag=tag)
    assert [loop.serve().tag for _ in range(3)] == ["a", "b", "c"]


def test_earliest_deadline_first_within_a_tenant() -> None:
    loop = Loop(tiered())
    loop.join(deadline=5.0, tag="due-5")
    loop.join(deadline=1.0, tag="due-1")
    loop.join(tag="none")  # due 30 s after it arrived (the horizon)
    loop.join(deadline=3.0, tag="due-3")
    assert [loop.serve().tag for _ in range(4)] == ["due-1", "due-3", "due-5", "none"]


@pytest.mark.parametrize(("prompt_a", "prompt_b"), [(10, 10), (20, 400)], ids=["equal-prompts", "unequal-prompts"])
def test_weighted_fair_share_in_tokens_is_three_to_one(prompt_a: int, prompt_b: int) -> None:
    """Two backlogged tenants, weights 3:1: the tokens they are served (prompt + generated) stay
    within 10 % of 3:1, whatever their prompt lengths."""
    loop = Loop(tiered())
    for _ in range(4):
        loop.join("a", weight=3, prompt=prompt_a)
        loop.join("b", weight=1, prompt=prompt_b)
    for _ in range(600):
        tenant = loop.serve(completion=16).request.tenant  # everyone generates 16 tokens
        loop.join(tenant, weight=3 if tenant == "a" else 1, prompt=prompt_a if tenant == "a" else prompt_b)
    ratio = loop.tokens["a"] / loop.tokens["b"]
    assert 2.7 <= ratio <= 3.3, ratio


def test_a_tenant_back_from_idle_gets_no_credit_for_it() -> None:
    """B was away while A was served alone; when B comes back it is lifted to A's counter, so it
    alternates with A (weights equal) instead of taking every slot until it caught up."""
    loop = Loop(tiered())
    loop.join("a")
    for _ in range(50):
        loop.serve()
        loop.join("a")
    loop.join("b")
    for _ in range(3):
        loop.join("b")
    order = []
    for _ in range(6):
        order.append(loop.serve().request.tenant)
        if order[-1] == "a":
            loop.join("a")
    assert Counter(order) == Counter({"a": 3, "b": 3})


def test_the_charge_is_corrected_to_the_real_usage() -> None:
    counters = LocalCounters()
    policy = make_policy("vtc", aging_s=None, horizon_s=30.0, counters=counters)
    loop = Loop(policy)
    loop.join("a", prompt=100, max_tokens=1000)
    loop.serve(completion=3)
    assert counters.value("a") == 103  # 100 prompt + 3 generated, not 100 + the estimate


def test_aging_serves_a_starved_class_within_the_bound() -> None:
    """Continuous top-class load: the low request is served once it has waited the aging bound."""
    loop = Loop(tiered(aging_s=2.0))
    low = loop.join("free", 0, tag="low")
    for _ in range(5):
        loop.join("ent", 2)
    waited = None
    for _ in range(100):
        served = loop.serve(seconds=0.25)
        if served is low:
            waited = loop.now - 0.25 - low.enqueued_at
            break
        loop.join("ent", 2)
    assert waited is not None and 2.0 <= waited <= 2.0 + 0.25


def test_without_aging_the_top_class_always_wins() -> None:
    loop = Loop(tiered(aging_s=None))
    low = loop.join("free", 0)
    loop.join("ent", 2)
    for _ in range(50):
        assert loop.serve(seconds=1.0) is not low
        loop.join("ent", 2)


def test_ahead_estimates_weighted_turns() -> None:
    policy = tiered()
    loop = Loop(policy)
    for _ in range(6):
        loop.join("a", weight=3)
    loop.join("higher", 2)
    # b (weight 1) joining: a waits with weight 3, so b's one request goes after ~3 of a's, behind the higher one
    ahead = policy.ahead(RoutingRequest({}, priority=1, tenant="b", weight=1))
    assert ahead == pytest.approx(1 + 3)
    assert policy.ahead(RoutingRequest({}, priority=3, tenant="c")) == 0


def test_waiters_that_left_are_skipped() -> None:
    loop = Loop(tiered())
    first = loop.join("a", tag="first")
    loop.join("a", tag="second")
    first.queued = False
    loop.policy.remove(first)
    assert loop.serve().tag == "second"
    assert loop.policy.peek(loop.now) is None


def test_counters_merged_from_elsewhere_reorder_the_tenants() -> None:
    counters = LocalCounters()
    loop = Loop(make_policy("vtc", aging_s=None, horizon_s=30.0, counters=counters))
    loop.join("a")
    loop.join("b")
    counters.add("a", 1000)  # another gateway served a lot of a
    counters.generation += 1
    assert loop.serve().request.tenant == "b"


def test_aged_waiters_take_at_most_their_share_of_the_slots() -> None:
    """Sustained overload of the low class: every low waiter ages, yet they jump the high class for
    one dispatch in ten (``aging_share``), not all of them."""
    policy = make_policy("tiered", aging_s=1.0, horizon_s=30.0, aging_share=0.1)
    loop = Loop(policy)
    for _ in range(200):
        loop.join("free", 0)
    for _ in range(3):
        loop.join("ent", 2)
    loop.now = 5.0  # every low waiter is aged now
    served = Counter[str]()
    for _ in range(200):
        tenant = loop.serve(seconds=0.01).request.tenant
        served[tenant] += 1
        if tenant == "ent":
            loop.join("ent", 2)
    assert 18 <= served["free"] <= 22, served
