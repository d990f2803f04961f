"""The monthly P&L model, checked by hand on small numbers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from inferlab.errors import InvalidRequest
from inferlab.planning.finance import HOURS_PER_MONTH, PathInputs, run_path

BASE = PathInputs(
    start_users=100, target_users=300, ramp_months=2, price_per_user_month=50, requests_per_user_month=1000,
    peak_to_average=4, browser_share=0, replica_requests_per_s=0.1, target_utilisation=0.5, gpus_per_replica=2,
    owned_replicas=0, capex_per_replica=12_000, amortisation_months=12, power_kw_per_replica=1.0,
    idle_power_fraction=0.2, pue=1.5, electricity_usd_per_kwh=0.1, colo_usd_per_kw_month=100,
    rent_usd_per_gpu_hour=1.0, rented_hours_per_month=HOURS_PER_MONTH, cdn_usd_per_user_month=0.04,
    other_usd_per_month=500, months=4,
)
SECONDS = HOURS_PER_MONTH * 3600


def test_renting_month_by_month() -> None:
    r = run_path(BASE)
    users = [m.users for m in r.months]
    assert users == [100, 200, 300, 300]  # linear ramp over two months, then flat
    m1 = r.months[0]
    peak = 100 * 1000 * 4 / SECONDS  # 0.152 requests/s
    assert m1.peak_rps == pytest.approx(peak)
    assert m1.replicas_needed == 4  # ceil(0.152 / (0.1 x 0.5))
    assert m1.rent == pytest.approx(4 * 2 * 1.0 * HOURS_PER_MONTH)
    assert m1.total_cost == pytest.approx(m1.rent + 500)
    assert m1.operating_margin == pytest.approx(5000 - m1.total_cost)
    assert m1.cost_per_request == pytest.approx(m1.total_cost / 100_000)
    assert r.break_even_month is None  # 4 replicas of rent eat the revenue
    assert r.months[-1].cumulative_cash == pytest.approx(sum(m.cash_flow for m in r.months))


def test_buying_pays_up_front_and_depreciates() -> None:
    bought = run_path(replace(BASE, owned_replicas=12, price_per_user_month=400))
    m1, m2 = bought.months[0], bought.months[1]
    assert bought.upfront_usd == 144_000
    assert m1.depreciation == pytest.approx(12_000)
    assert m1.rented_replicas == 0 and m1.rent == 0
    busy = 100 * 1000 / SECONDS / (12 * 0.1)  # average load over owned capacity
    assert m1.energy == pytest.approx(12 * 1.0 * 1.5 * HOURS_PER_MONTH * 0.1 * (0.2 + 0.8 * busy))
    assert m1.colocation == pytest.approx(12 * 100)
    assert m1.cash_flow == pytest.approx(40_000 - (m1.energy + m1.colocation + 500) - 144_000)
    assert m2.cash_flow == pytest.approx(80_000 - (m2.energy + m2.colocation + 500))
    assert bought.break_even_month == 3


def test_browser_share_moves_requests_off_the_server_and_adds_cdn() -> None:
    hybrid = run_path(replace(BASE, browser_share=0.8)).months[0]
    assert hybrid.server_requests == pytest.approx(100 * 1000 * 0.2)
    assert hybrid.replicas_needed == 1
    assert hybrid.cdn == pytest.approx(100 * 0.04)
    assert hybrid.cost_per_server_request == pytest.approx(hybrid.total_cost / 20_000)


def test_depreciation_stops_after_amortisation() -> None:
    r = run_path(replace(BASE, owned_replicas=1, amortisation_months=2))
    assert [m.depreciation for m in r.months] == [6000, 6000, 0, 0]


@pytest.mark.parametrize(("field", "value"), [("browser_share", 1.5), ("target_utilisation", 0), ("users", None),
                                              ("price_per_user_month", -1), ("replica_requests_per_s", 0)])
def test_bad_inputs_are_refused(field: str, value: float | None) -> None:
    if field == "users":
        with pytest.raises(TypeError):
            replace(BASE, users=1)  # type: ignore[call-arg]
        return
    with pytest.raises(InvalidRequest) as info:
        replace(BASE, **{field: value})
    assert info.value.param == field
