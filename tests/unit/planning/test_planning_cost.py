"""Cost per 1M tokens and per request, TCO, break-even, TPU chip-hours, the CodeLab case."""

from __future__ import annotations

import pytest

from inferlab.errors import InvalidRequest
from inferlab.planning import (
    BusinessCase,
    Catalogue,
    OwnedCosts,
    RentalPlan,
    breakeven_months,
    breakeven_utilisation,
    compare_tco,
    default_owned_costs,
    evaluate_business,
    load_catalogue,
    owned_monthly,
    rented_monthly,
    resolve_deployment,
    usd_per_million_tokens,
    usd_per_request,
)
from inferlab.planning.cost import DAYS_PER_MONTH, HOURS_PER_MONTH
from inferlab.planning.specs import BillingTerms, SourceRef

HOURLY = BillingTerms(SourceRef("test: whole hours", "2026-11", "E"), increment_s=3600)

BOX = OwnedCosts(purchase_usd=36_000, amortisation_years=3, power_w=1000, pue=1.5, electricity_usd_per_kwh=0.10,
                 colo_usd_per_kw_month=200)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def test_cost_per_million_tokens_by_hand() -> None:
    # $2/h, 1,000 tok/s, busy all month: 3.6M tokens per hour -> $0.556 per 1M
    assert usd_per_million_tokens(2 * HOURS_PER_MONTH, 1000, 1.0) == pytest.approx(2 / 3.6)
    assert usd_per_million_tokens(2 * HOURS_PER_MONTH * 0.5, 1000, 0.5) == pytest.approx(2 / 3.6)
    assert usd_per_request(2.0, 500) == pytest.approx(0.001)


def test_owned_monthly_by_hand() -> None:
    month = owned_monthly(BOX, 0.5)
    assert month.capital == pytest.approx(1000)
    assert month.energy == pytest.approx(1.0 * HOURS_PER_MONTH * 0.5 * 1.5 * 0.10)
    assert month.colocation == pytest.approx(200)
    assert month.total == pytest.approx(1000 + 54.75 + 200)


def test_breakeven_utilisation_equalises_costs() -> None:
    rent = 5.0
    u = breakeven_utilisation(BOX, rent)
    assert u is not None and 0 < u < 1
    # against a box rented only for the busy hours, per-second billing
    assert owned_monthly(BOX, u).total == pytest.approx(rented_monthly(RentalPlan(rent, hours_per_day=24 * u), u).total,
                                                        rel=0.01)
    assert breakeven_utilisation(BOX, 0.1) is None  # rent below the power bill: never


def test_breakeven_months() -> None:
    assert breakeven_months(36_000, 4_000, 1_000) == pytest.approx(12)
    assert breakeven_months(36_000, 900, 1_000) is None


def test_a_rented_server_is_paid_every_hour_it_runs() -> None:
    """A box rented to serve is up all day: busy 25 % of the time, it is still paid 730 h a month."""
    assert rented_monthly(RentalPlan(2.0), 0.25).total == pytest.approx(2 * HOURS_PER_MONTH)
    assert rented_monthly(RentalPlan(2.0, reserved=True), 0.25).total == pytest.approx(2 * HOURS_PER_MONTH)


def test_a_stopped_box_pays_its_sessions_in_whole_billing_increments() -> None:
    # up 2.5 h a day, billed by the hour: 3 h a day
    assert RentalPlan(2.0, HOURLY, hours_per_day=2.5).paid_hours(0.1) == pytest.approx(DAYS_PER_MONTH * 3)
    per_minute = BillingTerms(SourceRef("test", "2026-11", "E"), increment_s=60)
    assert RentalPlan(2.0, per_minute, hours_per_day=2.5).paid_hours(0.1) == pytest.approx(DAYS_PER_MONTH * 2.5)
    minimum = BillingTerms(SourceRef("test", "2026-11", "E"), increment_s=1, minimum_s=60)
    assert RentalPlan(2.0, minimum, hours_per_day=0.001).paid_hours(0.00001) == pytest.approx(DAYS_PER_MONTH / 60)


def test_busy_time_cannot_exceed_the_time_the_box_runs() -> None:
    with pytest.raises(InvalidRequest) as info:
        RentalPlan(2.0, hours_per_day=6).paid_hours(0.5)
    assert info.value.param == "utilisation"


def test_serverless_and_commitments() -> None:
    serverless = BillingTerms(SourceRef("test", "2026-11", "E"), increment_s=1, scale_to_zero=True)
    assert RentalPlan(2.0, serverless).paid_hours(0.25) == pytest.approx(0.25 * HOURS_PER_MONTH)
    committed = BillingTerms(SourceRef("test", "2026-11", "E"), committed=True)
    assert RentalPlan(2.0, committed, hours_per_day=1).paid_hours(0.01) == HOURS_PER_MONTH
    assert breakeven_utilisation(BOX, 5.0, committed) is None


def test_billing_terms_come_from_the_catalogue(catalogue: Catalogue) -> None:
    h100 = catalogue.accelerator("h100-sxm")
    by_provider = {(r.provider, r.tier): catalogue.billing_for(r) for r in h100.rentals}
    assert by_provider[("runpod", "secure")].increment_s == 1
    assert by_provider[("lambda", "on_demand")].increment_s == 60
    assert by_provider[("aws_p5_capacity_block", "capacity_block")].committed
    unknown = catalogue.billing_for(None)
    assert (unknown.increment_s, unknown.minimum_s) == (3600, 3600)


def test_bad_utilisation() -> None:
    with pytest.raises(InvalidRequest) as info:
        owned_monthly(BOX, 1.5)
    assert info.value.param == "utilisation"


def test_default_owned_costs_from_catalogue(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="qwen2.5-coder-32b", gpu="rtx-4090", quant="Q4_K_M")
    owned = default_owned_costs(catalogue, d, "home")
    assert owned is not None
    assert (owned.purchase_usd, owned.power_w, owned.pue, owned.electricity_usd_per_kwh, owned.amortisation_years) == (
        1599, 450, 1.0, 0.165, 3)
    node = resolve_deployment(catalogue, model="llama-3.1-405b", gpu="h100-sxm", quant="fp8", engine="vllm", gpus=8)
    server = default_owned_costs(catalogue, node, "datacenter")
    assert server is not None and server.purchase_usd == 325_000 and server.power_w == 10_200


def test_tco_comparison_uses_catalogue_rent(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="h100-sxm", quant="fp8", engine="vllm", gpus=2)
    tco = compare_tco(catalogue, d, 2000, utilisation=0.5)
    assert tco.rent_usd_per_hour == pytest.approx(2 * 2.69)
    # busy half the month, paid the whole month: each token costs twice what the busy hours alone would
    assert tco.rented_hours_per_month == HOURS_PER_MONTH
    assert tco.rented is not None and tco.rented.total == pytest.approx(2 * 2.69 * HOURS_PER_MONTH)
    assert tco.rented_usd_per_mtok == pytest.approx(2 * 2.69 / (2000 * 3600 * 0.5) * 1e6)
    assert tco.breakeven_utilisation is not None and tco.breakeven_months is not None
    night_off = compare_tco(catalogue, d, 2000, utilisation=0.25, hours_per_day=7.5, billing=HOURLY)
    assert night_off.rented_hours_per_month == pytest.approx(DAYS_PER_MONTH * 8)


def test_tpu_is_priced_by_the_chip_hour(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="tpu-v6e", quant="bf16", engine="vllm", gpus=8)
    tco = compare_tco(catalogue, d, 4000, utilisation=1.0)
    assert tco.rent_usd_per_hour == pytest.approx(8 * 2.70)
    assert tco.rented_hours_per_month == HOURS_PER_MONTH
    assert tco.owned is None and tco.breakeven_utilisation is None
    assert tco.rented_usd_per_mtok == pytest.approx(21.6 / (4000 * 3600) * 1e6)


def test_codelab_business_case() -> None:
    for rent, margin, users in ((20_000, 30_000, 400), (30_000, 20_000, 600)):
        r = evaluate_business(BusinessCase(users=1000, price_per_user_month=50, infra_usd_per_month=rent))
        assert r.revenue_per_month == 50_000
        assert r.margin_per_month == margin
        assert r.breakeven_users == users
    target = evaluate_business(BusinessCase(users=5000, price_per_user_month=50, infra_usd_per_month=150_000,
                                            upfront_usd=325_000))
    assert target.revenue_per_month == 250_000
    assert target.payback_months == pytest.approx(3.25)
