"""A protective pause is not the person's decision (issue 14, found by the chaos loop): a
listing changed by hand is held; if Amazon then cannot supply it, the sync pauses it
(stock 0) to protect the seller, and the listing must stay held afterwards. Before, the
confirmed pause cleared the drift flag and a later sync restocked it over the hand edit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_pull_hidden import _edits, _in_stock_item, _query, _sync

pytestmark = pytest.mark.slow


def test_a_protective_pause_leaves_a_hand_edited_listing_held(start_sandbox, data_dir, cli):
    sandbox = start_sandbox(time_scale=400.0, n_asins=120)
    env = sandbox.env()
    config: Path = data_dir.parent / "invsync.toml"
    config.write_text("", encoding="utf-8")
    _sync(cli, config, data_dir, env)
    item_id, asin = _in_stock_item(data_dir)
    item = sandbox.state.apis["base"].shops["shop1"].items[item_id]
    catalogue: Any = sandbox.state.apis["catalogue"]
    with sandbox.state.lock:
        item.price += 500  # the seller raises the price by hand ...
        offers, catalogue.products[asin].offers = catalogue.products[asin].offers, []
    hand_price = item.price

    _sync(cli, config, data_dir, env)  # ... and Amazon cannot supply: paused while held
    assert item.stock == 0 and item.price == hand_price
    assert _edits(sandbox.url, item_id)[-1] == {"price": hand_price, "stock": 0}
    (held,) = _query(
        data_dir,
        "select drift_detected_at is not null from listings_base where item_id = $i",
        {"i": item_id},
    )
    assert held == (True,)  # still the person's to decide

    with sandbox.state.lock:
        catalogue.products[asin].offers = offers  # Amazon can supply again
    edits_before = len(_edits(sandbox.url, item_id))
    _sync(cli, config, data_dir, env)
    assert len(_edits(sandbox.url, item_id)) == edits_before  # nothing pushed over the edit
    assert item.price == hand_price and item.stock == 0
