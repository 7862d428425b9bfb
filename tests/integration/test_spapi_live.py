"""Live SP-API behaviour the sandbox models, through fetch: ActiveButTooSoonForProcessing
(offers exist, not processable yet) is a doubtful observation — the last good observation
(flagged fallback) or unknown, never no_offer — and is not asked again in the same run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pipeline import snapshots
from tests.integration.test_fetch import (
    catalogue,
    fetch_run,
    ledger,
    open_warehouse,
    run_row,
    seed_listings,
    set_faults,
    spapi_calls,
    workspace,
)

SCALE = 1000.0  # getItemOffersBatch at 100 req/s


@pytest.fixture
def con(data_dir: Path):
    yield from open_warehouse(data_dir)


def _with_offers(server, n: int) -> list[str]:
    catalogue_ = server.state.apis["catalogue"]
    return [a for a in catalogue_.asins if catalogue_.buy_box(a)][:n]


def test_too_soon_asins_fall_back_or_stay_unknown_and_are_asked_once(
    start_sandbox, con, data_dir: Path
) -> None:
    server = start_sandbox(time_scale=SCALE)
    asins = catalogue(server)["asins"][:60]
    seed_listings(con, asins)
    ws = workspace(server, data_dir, max_fallback_age="24h")
    first = fetch_run(ws, con, initial_rate=0.1 * SCALE)
    earlier = snapshots.read_snapshot(data_dir, first.run_id)
    good = dict(zip(earlier["asin"], earlier["status"], strict=True))
    offered = [a for a in _with_offers(server, 200) if a in asins]
    known = [a for a in offered if good[a] in ("ok", "filtered_out")][:3]
    # an ASIN with offers that the first run never saw: no fallback
    new = next(a for a in _with_offers(server, 400) if a not in asins)
    con.execute(
        "insert into listings_base (account_id, item_id, asin, price_jpy, stock, visible,"
        " status, source, updated_at) values ('shop1', 999, $a, 1000, 1, true, 'listed',"
        " 'import', now())",
        {"a": new},
    )
    set_faults(server, {"too_soon_asins": [*known, new]})
    before = len(spapi_calls(ledger(server)))  # both lanes of the pool

    second = fetch_run(ws, con, initial_rate=0.1 * SCALE)

    frame = snapshots.read_snapshot(data_dir, second.run_id)
    rows = {r["asin"]: r for r in frame.iter_rows(named=True)}
    old = {r["asin"]: r for r in earlier.iter_rows(named=True)}
    for asin in known:
        row = rows[asin]
        assert row["status"] == "fallback", row
        assert row["error_code"] == "ActiveButTooSoonForProcessing"
        assert row["fallback_from_run"] == first.run_id
        assert (row["price_jpy"], row["in_stock"]) == (old[asin]["price_jpy"], True)
    assert rows[new]["status"] == "unknown"
    assert rows[new]["error_code"] == "ActiveButTooSoonForProcessing"
    assert rows[new]["in_stock"] is None and rows[new]["price_jpy"] is None
    assert not any(r["status"] == "no_offer" for a, r in rows.items() if a in [*known, new])
    # a stated item status is not asked again in the run: every ASIN asked once (in one of
    # the pool's lanes), no retry pass
    calls = spapi_calls(ledger(server))[before:]
    answered = [c for c in calls if c["status"] == 200]
    asked = Counter(a for c in answered for a in c["items"])
    assert len(asked) == 61 and set(asked.values()) == {1}
    assert asked[new] == 1
    row = run_row(con, second.run_id)
    assert row["spapi_retry_pass_calls"] == 0
    assert (row["fallbacks"], row["unknowns"]) == (len(known), 1)
