"""A small reviewed run for the workbench tests: seeded listings and snapshot, the real
transform, the real diffs read back — and, until main's ``PricedDiff`` carries them, the
columns the workbench reads that transform does not write yet (:func:`with_new_columns`).

The run (Amazon at ¥1,000 unless said otherwise, so a BASE price of ¥1,300 moves to ¥1,400):

* BASE ``shop1``: items 1 and 2 listed at ¥500 (a 180 % move: held), item 3 at ¥1,300
  (price up, not held), item 4 with Amazon out of stock (out of stock, not held);
* BASE ``shop2``: item 5 at ¥500 (held), items 6 and 7 at ¥1,300;
* eBay ``ebay-main``: SKU ``S-[bold]1`` (rich markup in the SKU) at $29.00, ``S-2`` at $9.00
  (held).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from queue import Queue
from typing import Any

import polars as pl

from pipeline.config import Workspace, open_workspace
from pipeline.decisions import opened as decisions_store
from pipeline.review import breaker_for, read_diff
from pipeline.transform import run as transform_run
from pipeline.warehouse import opened
from pipeline.workbench.server import serve
from tests.sql.frames import asin, observation, seed_run

RUN = "20250601T000000Z-3b3b3b"
EVIL_TITLE = '<script>document.title="pwned"</script> Tea & cups'
TITLES = {
    "1": EVIL_TITLE,
    "2": "Kyusu teapot 300 ml",
    "3": "Bamboo whisk (chasen)",
    "5": "Matcha bowl, blue glaze",
    "S-[bold]1": "Cast iron kettle [bold]1.2 L[/bold]",
}


def seed(data_dir: Path) -> None:
    base = [
        {"account_id": "shop1", "item_id": 1, "asin": asin(1), "price_jpy": 500, "stock": 2},
        {"account_id": "shop1", "item_id": 2, "asin": asin(2), "price_jpy": 500, "stock": 1},
        {"account_id": "shop1", "item_id": 3, "asin": asin(3), "price_jpy": 1300, "stock": 3},
        {"account_id": "shop1", "item_id": 4, "asin": asin(4), "price_jpy": 1300, "stock": 1},
        {"account_id": "shop2", "item_id": 5, "asin": asin(5), "price_jpy": 500, "stock": 1},
        {"account_id": "shop2", "item_id": 6, "asin": asin(6), "price_jpy": 1300, "stock": 1},
        {"account_id": "shop2", "item_id": 7, "asin": asin(7), "price_jpy": 1300, "stock": 1},
    ]
    ebay = [
        {"account_id": "ebay-main", "sku": "S-[bold]1", "asin": asin(1), "price_cents": 2900},
        {"account_id": "ebay-main", "sku": "S-2", "asin": asin(2), "price_cents": 900},
    ]
    snapshot = [observation(asin(n), price_jpy=1000) for n in (1, 2, 3, 5, 6, 7)]
    snapshot.append(observation(asin(4), "no_offer"))
    seed_run(data_dir, RUN, base=base, ebay=ebay, snapshot=snapshot, unique_asins=7)
    with opened(data_dir) as con:  # the titles the platforms hold (pull fills them)
        for key, title in TITLES.items():
            con.execute(
                "update listings_base set title = $t where cast(item_id as varchar) = $k",
                {"t": title, "k": key},
            )
            con.execute(
                "update listings_ebay set title = $t where sku = $k", {"t": title, "k": key}
            )


def with_new_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` plus the diff columns main is adding (``change_id``, ``title``,
    ``current_profit_minor``, ``protection``, ``protection_reason``) where it lacks them.
    A stand-in only: the id hashes what the real one hashes, the profit at the current price
    ignores fees; once main's transform writes the columns this returns ``frame`` as it is."""
    columns = []
    if "change_id" not in frame.columns:
        key = pl.concat_str(
            [
                pl.col(c).cast(pl.String).fill_null("")
                for c in (
                    "platform", "account_id", "listing_key", "old_price_minor",
                    "new_price_minor", "old_quantity", "new_quantity", "cost_jpy",
                )
            ],
            separator="|",
        )  # fmt: skip
        columns.append(
            key.map_elements(
                lambda k: hashlib.sha256(k.encode()).hexdigest()[:20], return_dtype=pl.String
            ).alias("change_id")
        )
    if "title" not in frame.columns:
        columns.append(pl.col("listing_key").replace_strict(TITLES, default=None).alias("title"))
    if "current_profit_minor" not in frame.columns:
        columns.append(
            pl.when(pl.col("currency") == "JPY")
            .then(pl.col("old_price_minor") - pl.col("cost_jpy"))
            .otherwise(pl.col("expected_profit_minor"))
            .alias("current_profit_minor")
        )
    frame = frame.with_columns(columns)
    if "protection" not in frame.columns:
        losing = pl.col("held") & (pl.col("current_profit_minor") < pl.col("min_profit_minor"))
        frame = frame.with_columns(
            pl.when(losing).then(pl.lit("raise")).otherwise(None).alias("protection"),
            pl.when(losing)
            .then(pl.lit("loss_at_current_price"))
            .otherwise(None)
            .alias("protection_reason"),
        )
    return frame


def reviewed_run(
    data_dir: Path,
) -> tuple[Workspace, dict[str, pl.DataFrame], dict[str, tuple[bool, list[str]]]]:
    """Seed, transform and judge the run; its diffs per platform (with the new columns) and
    breakers. The warehouse is closed again when this returns, as the workbench needs."""
    seed(data_dir)
    ws = open_workspace(data_dir=data_dir, environ={})
    breakers: dict[str, tuple[bool, list[str]]] = {}
    with opened(data_dir) as con, decisions_store(data_dir) as store:
        result = transform_run(ws, con, RUN)
        for platform in result.platforms:
            breaker = breaker_for(ws, con, RUN, platform, store)
            breakers[platform] = (breaker.tripped, breaker.reasons)
    diffs = {p: with_new_columns(read_diff(ws, RUN, p)) for p in breakers}
    return ws, diffs, breakers


@contextmanager
def served(
    ws: Workspace,
    diffs: Mapping[str, pl.DataFrame],
    breakers: Mapping[str, Any],
) -> Iterator[str]:
    """The run served by :func:`pipeline.workbench.server.serve` in a thread, as ``invsync
    review --serve`` will serve it; yields the URL with its token, stops it at the end."""
    ready: Queue[str | BaseException] = Queue()
    stop = threading.Event()

    def run() -> None:
        try:
            serve(ws, RUN, breakers=breakers, open_browser=False, on_ready=ready.put,
                  stop_event=stop, diffs=diffs)  # fmt: skip
        except BaseException as exc:  # surfaced by the test, not lost in the thread
            ready.put(exc)

    thread = threading.Thread(target=run, name="workbench-test", daemon=True)
    thread.start()
    url = ready.get(timeout=60)
    if isinstance(url, BaseException):
        raise url
    try:
        yield url
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive(), "serve did not stop when its stop_event was set"
