"""The benchmark harness on tiny inputs, so `make bench` does not rot between runs.

Not a benchmark: it checks that every section measures, that the figures agree with what
the sandbox and the synthetic data say they must be, and that the document shows them.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from bench import fetch_bench
from bench.run import QUICK, run_bench


@pytest.mark.slow
def test_quick_bench_measures_every_section_and_writes_the_document(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    results = run_bench(out, quick=True, runs=1, work=tmp_path / "work", echo=False)

    assert {name: s.error for name, s in results.sections.items()} == dict.fromkeys(
        ("fetch", "pool", "transform", "load", "chaos", "whatif", "freshness", "sellers")
    )
    # sellers: both through Dagster, every fetch answered, the heavier one again alone
    sellers = results.sellers
    assert sellers is not None and len(sellers.together) == 2 and len(sellers.alone) == 1
    assert all(r.outcome in ("ok", "held") and r.calls > 0 for r in sellers.together)
    assert sellers.together_seconds > 0 and sellers.ratio > 0
    # pool: both lanes answered, every ASIN exactly once on the ledger
    (pooled,) = results.pool
    assert pooled.ledger_ok and pooled.answered_once == pooled.sent_asins
    assert set(pooled.calls) == {"getItemOffersBatch", "getItemOffers"}
    # fetch: the demo listings of the quick catalogue, plus its 8 invalid ASINs
    listings = fetch_bench.demo_listings(QUICK.fetch_asins)
    unique = len({a for asins in listings.values() for a in asins})
    for operation in ("item_offers", "competitive_pricing"):
        (run,) = results.fetch[operation]
        assert run.unique_asins == unique
        assert run.calls == run.expected_calls + run.throttled  # only 429s add calls
        assert run.span_seconds > 0 and run.floor_seconds > 0
    (replaced,) = results.replaced["replaced"]
    per_shop = {a: math.ceil(len(listings[a]) / 20) for a in ("shop1", "shop2")}
    assert replaced.result.per_account_batches == per_shop
    assert replaced.ledger_batch_calls == sum(per_shop.values())
    # eBay misses at least the ASINs no BASE shop lists, one call each
    base = set(listings["shop1"]) | set(listings["shop2"])
    assert replaced.ledger_single_calls >= len(set(listings["ebay-main"]) - base)
    assert replaced.calls > results.fetch["item_offers"][0].calls

    # transform: a fresh subprocess per measurement, a diff of roughly the drifted share
    (measured,) = results.transform[2_000]
    assert 0 < measured.detail["diff_rows"] < 2_000 * QUICK.changed_share * 1.5
    assert measured.peak_rss_mib > 50  # polars + duckdb + pandera are loaded
    (naive,) = results.naive[2_000]
    assert naive.detail["listings"] == 2_000
    assert 0 < naive.peak_rss_mib < measured.peak_rss_mib

    # load: the ledger's calls against the lower bound
    (load,) = results.load
    assert load.changed_base > 0 and load.changed_ebay_inventory > 0
    assert load.calls_base == load.lower_bound_base == load.changed_base
    assert (
        load.calls_ebay
        == load.lower_bound_ebay
        == math.ceil(load.changed_ebay_inventory / 25) + math.ceil(load.changed_ebay_trading / 4)
    )  # bulk calls of 25, Trading calls of 4

    text = out.read_text(encoding="utf-8")
    for heading in (
        "## Method",
        "## Machine",
        "## Targets (issue 8)",
        "## Fetch",
        "## Transform",
        "## Load",
        "## Chaos",
        "## What-if",
    ):
        assert heading in text
    assert "Quick run" in text
    assert re.search(r"\| cores \| \d+ \|", text)
    assert re.search(r"\| python-amazon-sp-api \| \d", text)
    item_offers = results.fetch["item_offers"][0]
    assert f"| fetch item_offers: calls = ceil(unique / 20) | {item_offers.calls} vs " in text

    # chaos: the quick rounds ran, were checked, and the document shows them
    chaos = results.chaos
    assert chaos is not None and len(chaos.rounds) == QUICK.chaos_rounds + 1  # + the clean one
    assert chaos.changes_checked > 0 and not chaos.violations, chaos.violations

    # whatif: both rule sets over every run of the quick history, every listing priced twice
    days, per_day, listings = QUICK.whatif_size
    (replayed,) = results.whatif
    assert replayed.detail["replayed_runs"] == days * per_day
    assert replayed.detail["priced_rows"] == 2 * days * per_day * listings
    # the candidate's higher BASE markup moves more prices than the steady state in force
    assert 0 < replayed.detail["changes"]["in force"] < replayed.detail["changes"]["candidate"]
    assert replayed.seconds > 0 and replayed.peak_rss_mib > 50
    assert f"| whatif {days} days × {per_day} runs × {listings:,} listings, both rule sets" in text
