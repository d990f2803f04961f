"""A subscription business on top of inference: revenue, margin, break-even users and payback.

The guide's CodeLab case: 1,000 users paying $50/month against ~$20-30k/month of rented GPUs,
and a 5,000-user target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from inferlab.errors import InvalidRequest


@dataclass(frozen=True)
class BusinessCase:
    users: int
    price_per_user_month: float
    infra_usd_per_month: float
    other_usd_per_month: float = 0.0
    upfront_usd: float = 0.0  # hardware bought instead of rented, set-up


@dataclass(frozen=True)
class BusinessResult:
    users: int
    revenue_per_month: float
    costs_per_month: float
    margin_per_month: float
    margin_fraction: float
    breakeven_users: int  # subscribers needed to cover the monthly costs
    payback_months: float | None  # months for the margin to repay the upfront spend (None: never)
    infra_per_user_month: float


def evaluate_business(case: BusinessCase) -> BusinessResult:
    if case.users < 0 or case.price_per_user_month <= 0:
        raise InvalidRequest("users must be >= 0 and price_per_user_month > 0", param="users")
    revenue = case.users * case.price_per_user_month
    costs = case.infra_usd_per_month + case.other_usd_per_month
    margin = revenue - costs
    payback = None
    if case.upfront_usd == 0:
        payback = 0.0
    elif margin > 0:
        payback = case.upfront_usd / margin
    return BusinessResult(
        users=case.users,
        revenue_per_month=revenue,
        costs_per_month=costs,
        margin_per_month=margin,
        margin_fraction=margin / revenue if revenue else 0.0,
        breakeven_users=math.ceil(costs / case.price_per_user_month),
        payback_months=payback,
        infra_per_user_month=case.infra_usd_per_month / case.users if case.users else 0.0,
    )
