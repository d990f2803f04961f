"""The seed's model reproduced, the four paths, the sensitivity analysis and the charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from inferlab.planning import Catalogue, load_catalogue
from inferlab.planning.capstone_report import charts
from inferlab.planning.finance import run_path
from inferlab.planning.paths import PATHS, path_inputs, replica_capacity
from inferlab.planning.seed import SEED, reproduce_seed
from inferlab.planning.sensitivity import tornado


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def test_every_seed_figure_is_recomputed_with_a_verdict_and_a_reason(catalogue: Catalogue) -> None:
    rows = {r.figure: r for r in reproduce_seed(catalogue)}
    assert len(rows) == 7
    for r in rows.values():
        assert r.verdict.startswith(("holds", "does not hold")) and r.why and r.inferlab
    # the rent the seed quotes sits inside the catalogue's offers; a whole 8x H100 server costs more than $200k
    assert rows["Reserved rental, 8x H100 a month"].verdict == "holds"
    assert rows["8x H100 owned, purchase"].verdict.startswith("does not hold")
    hybrid = next(r for f, r in rows.items() if f.startswith("Cost per request"))
    assert f"{SEED.browser_share:.0%}" in hybrid.figure


def test_the_paths_use_inferlab_capacity_and_catalogue_prices(catalogue: Catalogue) -> None:
    by_key = {p.key: p for p in PATHS}
    assert set(by_key) == {"rent", "buy", "burst", "mini"}
    rent, buy, burst, mini = (path_inputs(catalogue, by_key[k]) for k in ("rent", "buy", "burst", "mini"))
    assert rent.owned_replicas == 0 and rent.rented_hours_per_month == 730
    assert buy.owned_replicas >= 1 and buy.capex_per_replica == catalogue.accelerator("h100-sxm").node8_purchase.usd  # type: ignore[union-attr]
    assert burst.owned_replicas >= 1 and burst.rented_hours_per_month < 730
    assert mini.capex_per_replica == pytest.approx(2 * 1599 + 1800)  # the ~$5k mini lab
    cap = replica_capacity(catalogue, by_key["rent"])
    assert cap.feasible and rent.replica_requests_per_s == pytest.approx(cap.replica_requests_per_s)
    assert replica_capacity(catalogue, by_key["mini"]).batch_per_replica == 1  # llama.cpp, one stream
    for p in (rent, buy, burst, mini):
        assert run_path(p).final.users == p.target_users


def test_tornado_bars_are_sorted_and_move_the_outcome(catalogue: Catalogue) -> None:
    t = tornado(catalogue, PATHS[1])
    swings = [b.swing for b in t.bars]
    assert swings == sorted(swings, reverse=True)
    names = {b.lever for b in t.bars}
    assert {"utilisation target", "price per user", "GPU price (buy and rent)", "model size", "browser share"} <= names
    price = next(b for b in t.bars if b.lever == "price per user")
    assert price.low is not None and price.high is not None and price.low < t.base < price.high


def test_charts_are_well_formed_svg(catalogue: Catalogue) -> None:
    files = charts(catalogue)
    assert {"tornado-rent.svg", "tornado-buy.svg", "tornado-burst.svg", "tornado-mini.svg", "cumulative-cash.svg"} == set(files)
    for name, svg in files.items():
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg"), name
        assert len(list(root.iter())) > 10
    assert charts(catalogue) == files  # deterministic: the committed files can be checked
