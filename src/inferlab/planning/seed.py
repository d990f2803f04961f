"""The seed's economic model, reproduced by InferLab's own capacity and cost models.

The seed (the project's founding brief, restated in issue 24) sizes its lab with a handful of
figures: 8x H100 owned for ~$200k, 4x H100 "with optimisation" for ~$100k, a reserved rental at
~$20-30k a month, 1,000 users at $50 a month growing to 5,000, a break-even between renting and
owning, and a lower cost per request when 80 % of requests run in the browser. :data:`SEED` holds
them as quoted; :func:`reproduce_seed` computes each from the catalogue, the speed and capacity
models and :mod:`finance`, and says whether the seed's figure holds, and why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from inferlab.planning.catalogue import Catalogue
from inferlab.planning.cost import HOURS_PER_MONTH
from inferlab.planning.finance import PathInputs, replicas_for, run_path
from inferlab.planning.memory import estimate_memory
from inferlab.planning.paths import H100_4, PATHS, Path, path_inputs, replica_capacity
from inferlab.planning.specs import GIB


@dataclass(frozen=True)
class SeedFigures:
    capex_8x_h100: float = 200_000
    capex_4x_h100: float = 100_000
    rent_per_month: tuple[float, float] = (20_000, 30_000)  # reserved 8x H100
    users: int = 1000
    price_per_user_month: float = 50
    target_users: int = 5000
    browser_share: float = 0.8


SEED = SeedFigures()


@dataclass(frozen=True)
class Comparison:
    figure: str
    seed: str
    inferlab: str
    verdict: str  # "holds", "holds only ...", "does not hold"
    why: str


def _usd(value: float) -> str:
    return f"${value:,.0f}"


def _range(low: float, high: float) -> str:
    return _usd(low) if round(low) == round(high) else f"{_usd(low)}-{_usd(high)}"


def _verdict(seed_low: float, seed_high: float, low: float, high: float, slack: float = 0.15) -> str:
    """"holds" when the ranges overlap within ``slack``, else which way the seed is off."""
    if low <= seed_high * (1 + slack) and high >= seed_low * (1 - slack):
        return "holds"
    return "does not hold: the seed's is lower" if seed_high < low else "does not hold: the seed's is higher"


def _path(key: str) -> Path:
    return next(p for p in PATHS if p.key == key)


def reproduce_seed(catalogue: Catalogue) -> list[Comparison]:
    h100 = catalogue.accelerator("h100-sxm")
    assert h100.purchase is not None and h100.node8_purchase is not None  # the shipped catalogue prices H100s
    gpu_low, gpu_high = h100.purchase.usd_range or (h100.purchase.usd, h100.purchase.usd)
    node_low, node_high = h100.node8_purchase.usd_range or (h100.node8_purchase.usd, h100.node8_purchase.usd)
    rows = [
        Comparison("8x H100 owned, purchase", _usd(SEED.capex_8x_h100),
                   f"GPUs alone {_range(8 * gpu_low, 8 * gpu_high)}; whole server {_range(node_low, node_high)}",
                   _verdict(SEED.capex_8x_h100, SEED.capex_8x_h100, node_low, node_high),
                   f"$200k buys the eight GPUs ({h100.purchase.ref.source}) but not the server around them: chassis,"
                   f" CPUs, memory, NVSwitch and NICs ({h100.node8_purchase.ref.source})"),
    ]
    rows.append(_four_gpus(catalogue, node_low, node_high, gpu_low, gpu_high))
    rows.append(_rent(catalogue))
    rows += _users_and_margin(catalogue)
    rows.append(_breakeven(catalogue))
    rows.append(_hybrid(catalogue))
    return rows


def _four_gpus(catalogue: Catalogue, node_low: float, node_high: float, gpu_low: float, gpu_high: float) -> Comparison:
    d = H100_4.deployment(catalogue)
    fit = estimate_memory(catalogue, d, 8192)
    cap = replica_capacity(catalogue, _path("rent"))
    return Comparison(
        "4x H100 with optimisation, purchase", _usd(SEED.capex_4x_h100),
        f"GPUs alone {_range(4 * gpu_low, 4 * gpu_high)}; half a server {_range(node_low / 2, node_high / 2)}",
        _verdict(SEED.capex_4x_h100, SEED.capex_4x_h100, node_low / 2, node_high / 2),
        f"'Optimisation' = 4-bit weights: {d.label()} needs {fit.required / GIB:.1f} of {fit.budget / GIB:.1f} GiB per"
        f" GPU and serves {cap.replica_requests_per_s:.1f} requests/s at the SLO (batch {cap.batch_per_replica},"
        f" limited by {cap.limited_by}); $100k again covers the GPUs, not the host",
    )


def _rent(catalogue: Catalogue) -> Comparison:
    h100 = catalogue.accelerator("h100-sxm")
    monthly = sorted((r.usd_per_hour * 8 * HOURS_PER_MONTH, r) for r in h100.rentals)
    low, high = monthly[0][0], monthly[-1][0]
    named = ", ".join(f"{r.provider} {r.tier} {_usd(v)} ({r.ref.date})" for v, r in monthly)
    return Comparison(
        "Reserved rental, 8x H100 a month", _range(*SEED.rent_per_month), f"{_range(low, high)} ({named})",
        _verdict(*SEED.rent_per_month, low, high),
        "8 GPUs x 730 h at the catalogue's prices; the seed's range sits inside today's offers",
    )


def _inputs(catalogue: Catalogue, key: str, users: float, browser_share: float = 0.0) -> PathInputs:
    base = path_inputs(catalogue, _path(key))
    return replace(base, start_users=users, target_users=users, browser_share=browser_share)


def _users_and_margin(catalogue: Catalogue) -> list[Comparison]:
    rows = []
    for users in (SEED.users, SEED.target_users):
        p = _inputs(catalogue, "rent", users)
        month = run_path(p).months[0]
        revenue = users * SEED.price_per_user_month
        seed_margin = (revenue - SEED.rent_per_month[1], revenue - SEED.rent_per_month[0])
        rows.append(Comparison(
            f"{users:,} users x ${SEED.price_per_user_month:.0f}: GPUs and margin a month",
            f"revenue {_usd(revenue)}, rent {_range(*SEED.rent_per_month)}, margin {_range(*seed_margin)}",
            f"{month.replicas_needed:.0f} x 4x H100 at the peak, rent {_usd(month.rent)}, margin {_usd(month.operating_margin)}",
            _verdict(*seed_margin, month.operating_margin, month.operating_margin),
            f"at {p.requests_per_user_month:,.0f} requests/user-month ({p.peak_to_average:g}x at the peak) one replica"
            f" serves {p.replica_requests_per_s:.1f} requests/s, so the peak needs {month.replicas_needed:.0f}; rent is"
            f" {month.rent / revenue:.0%} of revenue against the seed's {SEED.rent_per_month[0] / revenue:.0%}-"
            f"{SEED.rent_per_month[1] / revenue:.0%}. The seed's rent fits several times heavier use (see the"
            " sensitivity to requests per user)",
        ))
    return rows


def _breakeven(catalogue: Catalogue) -> Comparison:
    own = path_inputs(catalogue, _path("buy"))
    rent_month = 8 * own.rent_usd_per_gpu_hour * HOURS_PER_MONTH
    opex = run_path(replace(own, start_users=SEED.users, target_users=SEED.users)).months[1]
    running = opex.energy + opex.colocation
    seed_months = (SEED.capex_8x_h100 / SEED.rent_per_month[1], SEED.capex_8x_h100 / SEED.rent_per_month[0])
    ours = own.capex_per_replica / (rent_month - running)
    seed_rent = sum(SEED.rent_per_month) / 2
    at_seed_rent = own.capex_per_replica / (seed_rent - running)
    return Comparison(
        "Break-even, owning 8x H100 vs renting them", f"{seed_months[0]:.0f}-{seed_months[1]:.0f} months (purchase / rent)",
        f"{ours:.0f} months at {own.rent_usd_per_gpu_hour:.2f} $/GPU-h; {at_seed_rent:.0f} at the seed's"
        f" {_usd(seed_rent)} rent",
        _verdict(*seed_months, min(ours, at_seed_rent), max(ours, at_seed_rent)),
        f"a {_usd(own.capex_per_replica)} server against {_usd(rent_month)}/month of rent, less {_usd(running)}/month of"
        " power and colocation the owner pays; the seed divides a GPU-only price by the rent and forgets the running"
        " costs, so owning pays back later than it says",
    )


def _hybrid(catalogue: Catalogue) -> Comparison:
    server = run_path(_inputs(catalogue, "rent", SEED.target_users)).months[0]
    hybrid_inputs = _inputs(catalogue, "rent", SEED.target_users, browser_share=SEED.browser_share)
    hybrid = run_path(hybrid_inputs).months[0]
    saving = 1 - hybrid.cost_per_request / server.cost_per_request
    whole = replicas_for(hybrid_inputs, SEED.target_users)
    return Comparison(
        f"Cost per request, server-only vs {SEED.browser_share:.0%} in the browser ({SEED.target_users:,} users)",
        f"{SEED.browser_share:.0%} fewer server requests: ~{SEED.browser_share:.0%} lower cost per request",
        f"${server.cost_per_request:.5f} vs ${hybrid.cost_per_request:.5f} per request: {saving:.0%} lower",
        "holds" if abs(saving - SEED.browser_share) <= 0.15 else "does not hold",
        f"the server still needs {whole:.0f} whole replica(s) for the remaining peak and the browser model costs"
        f" {_usd(hybrid.cdn)}/month to download; rented capacity shrinks in steps, owned capacity not at all",
    )
