"""The review gate end to end: row holds, the per-platform breaker on the "every ASIN has 0
offers" fault, decisions (approve, reject, hold), exit codes, load_gate for load, and
review.html's content."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import polars as pl

from pipeline.config import open_workspace
from pipeline.decisions import opened as decisions_store
from pipeline.review import load_gate
from pipeline.transform import run as transform_run
from pipeline.warehouse import opened
from tests.sql.frames import asin, observation, seed_run, write_snapshot

RUN = "20250601T000000Z-5e5e5e"
N = 6


def _listings() -> tuple[list[dict], list[dict]]:
    base = [
        {
            "account_id": "shop1" if n % 2 else "shop2",
            "item_id": n,
            "asin": asin(n),
            "price_jpy": 1300,
            "stock": 1,
        }
        for n in range(1, N + 1)
    ]
    ebay = [
        {"account_id": "ebay-main", "sku": f"S-{n}", "asin": asin(n), "price_cents": 2900}
        for n in range(1, N + 1)
    ]
    return base, ebay


def _transform(data_dir: Path) -> None:
    ws = open_workspace(data_dir=data_dir, environ={})
    with opened(data_dir) as con:
        transform_run(ws, con, RUN)


def _seed_one_held_drop(data_dir: Path) -> list[dict]:
    """The run with item 1 held for a 53 % drop (¥3,000 → ¥1,400; not a loss now) and
    items 2–6 moving freely, all from an Amazon price of ¥1,000; the snapshot rows."""
    base, _ = _listings()
    base[0]["price_jpy"] = 3000
    prices = [observation(asin(n), price_jpy=1000) for n in range(1, N + 1)]
    seed_run(data_dir, RUN, base=base, unique_asins=N, snapshot=prices)
    _transform(data_dir)
    return prices


def _loadable(data_dir: Path, platform: str) -> tuple[pl.DataFrame, str | None]:
    ws = open_workspace(data_dir=data_dir, environ={})
    with opened(data_dir) as con, decisions_store(data_dir) as store:
        gate = load_gate(ws, con, RUN, platform, store)
    return gate.rows, gate.held_reason


def test_zero_offers_fault_trips_the_breaker_and_approve_releases_it(cli, data_dir: Path) -> None:
    base, ebay = _listings()
    # The SP-API fault: every ASIN answers with 0 offers.
    seed_run(
        data_dir,
        RUN,
        base=base,
        ebay=ebay,
        unique_asins=N,
        snapshot=[observation(asin(n), "no_offer") for n in range(1, N + 1)],
    )
    assert cli("--data-dir", str(data_dir), "transform").exit_code == 0

    review = cli("--data-dir", str(data_dir), "review")
    assert review.exit_code == 0, review.output  # only looking: held is a notice, not an error
    assert review.stdout.count(f"Run {RUN} is held for review") == 1
    assert "Error" not in review.output
    assert f"invsync approve {RUN} --platform base" in review.stdout
    assert f"invsync approve {RUN} --platform ebay" in review.stdout
    assert "Amazon calls 6 of 6 BASE listings out of stock" in review.stdout
    rows, reason = _loadable(data_dir, "base")
    assert rows.height == 0 and reason is not None and "--platform base" in reason

    approved = cli("--data-dir", str(data_dir), "approve", RUN, "--platform", "base")
    assert approved.exit_code == 0, approved.output
    assert (
        f"Approved 0 BASE row(s) of run {RUN} and released its tripped breaker" in approved.stdout
    )
    rows, reason = _loadable(data_dir, "base")
    assert reason is None and rows.height == N
    assert set(rows["change_kind"]) == {"out_of_stock"}
    rows, reason = _loadable(data_dir, "ebay")
    assert rows.height == 0 and reason is not None

    still = cli("--data-dir", str(data_dir), "review", "--run", RUN)
    held = [line for line in still.stdout.splitlines() if "is held for review" in line]
    assert still.exit_code == 0 and len(held) == 1 and "--platform ebay" in held[0]
    assert "--platform base" not in held[0]
    assert cli("--data-dir", str(data_dir), "approve", RUN).exit_code == 0
    done = cli("--data-dir", str(data_dir), "review", "--run", RUN)
    assert done.exit_code == 0, done.output


def test_api_error_share_and_short_coverage_trip_the_breaker(data_dir: Path) -> None:
    base, _ = _listings()
    snapshot = [observation(asin(n), "api_error") for n in range(1, 3)]
    snapshot += [observation(asin(n), price_jpy=1000) for n in range(3, N + 1)]
    seed_run(data_dir, RUN, base=base, snapshot=snapshot, unique_asins=N + 2)
    _transform(data_dir)
    rows, reason = _loadable(data_dir, "base")
    assert rows.height == 0
    assert reason is not None
    assert "2 of 6 BASE listings have an api_error or unknown source" in reason
    assert "the snapshot covers 6 ASINs but extract listed 8" in reason


def test_held_rows_wait_for_approval_and_a_new_transform_voids_it(cli, data_dir: Path) -> None:
    _seed_one_held_drop(data_dir)
    rows, reason = _loadable(data_dir, "base")
    assert reason is None
    assert sorted(rows["listing_key"]) == ["2", "3", "4", "5", "6"]  # item 1 waits

    review = cli("--data-dir", str(data_dir), "review")
    assert review.exit_code == 0
    assert "held 1 (B000000001, price_down): price_move_over_limit" in review.stdout
    assert "1 BASE row" in review.stdout

    assert cli("--data-dir", str(data_dir), "approve", RUN, "--platform", "base").exit_code == 0
    rows, _ = _loadable(data_dir, "base")
    assert sorted(rows["listing_key"]) == ["1", "2", "3", "4", "5", "6"]

    # the same change transformed again keeps its decision: it is bound to the change
    _transform(data_dir)
    rows, _ = _loadable(data_dir, "base")
    assert "1" in rows["listing_key"].to_list()

    # a different change on the same listing (Amazon moved) is decided anew
    write_snapshot(data_dir, RUN, [observation(asin(n), price_jpy=1100) for n in range(1, N + 1)])
    _transform(data_dir)
    rows, _ = _loadable(data_dir, "base")
    assert "1" not in rows["listing_key"].to_list()


def test_decisions_per_row_reject_and_hold(cli, data_dir: Path) -> None:
    base, _ = _listings()
    for row in base[:3]:
        row["price_jpy"] = 500  # items 1–3: 500 → 1,400, held for the move
    seed_run(
        data_dir,
        RUN,
        base=base,
        unique_asins=N,
        snapshot=[observation(asin(n), price_jpy=1000) for n in range(1, N + 1)],
    )
    _transform(data_dir)
    d = str(data_dir)
    one = cli("--data-dir", d, "approve", RUN, "--listing", "1")
    assert one.exit_code == 0 and f"Approved 1 BASE row(s) of run {RUN}." in one.stdout
    two = cli("--data-dir", d, "reject", "--listing", "2", "--listing", "4")  # newest run
    assert two.exit_code == 0 and f"Rejected 2 BASE row(s) of run {RUN}." in two.stdout
    rows, _ = _loadable(data_dir, "base")
    # 3 waits but loses money at ¥500: its raise is sent as a protection; 2 was rejected, so
    # it is paused instead (quantity 0, price kept)
    assert sorted(rows["listing_key"]) == ["1", "2", "3", "5", "6"]
    protect = rows.filter(pl.col("action") == "protect").sort("listing_key")
    assert protect.select("listing_key", "new_price_minor", "new_quantity").rows() == [
        ("2", 500, 0),
        ("3", 1400, 1),
    ]
    kept = cli("--data-dir", d, "hold", RUN, "--listing", "1")
    assert kept.exit_code == 0 and "Kept holding 1 BASE row(s)" in kept.stdout
    rows, _ = _loadable(data_dir, "base")
    assert rows.filter(pl.col("listing_key") == "1")["action"].to_list() == ["protect"]
    missing = cli("--data-dir", d, "approve", RUN, "--listing", "999")
    assert missing.exit_code == 2 and "No row of run" in missing.stderr
    # approving the whole platform approves what waits; a rejected row stays rejected (as
    # the workbench's "approve all held")
    everything = cli("--data-dir", d, "approve", RUN, "--platform", "base")
    assert everything.exit_code == 0 and "Approved 2 BASE row(s)" in everything.stdout
    rows, _ = _loadable(data_dir, "base")
    assert rows.filter(pl.col("listing_key") == "2")["action"].to_list() == ["protect"]


def test_approve_errors_exit_2(cli, data_dir: Path) -> None:
    base, _ = _listings()
    seed_run(
        data_dir,
        RUN,
        base=base,
        unique_asins=N,
        snapshot=[observation(asin(n), price_jpy=1000) for n in range(1, N + 1)],
    )
    nothing = cli("--data-dir", str(data_dir), "approve", RUN)
    assert nothing.exit_code == 2 and "invsync transform --run" in nothing.stderr
    _transform(data_dir)
    wrong = cli("--data-dir", str(data_dir), "approve", RUN, "--platform", "amazon")
    assert wrong.exit_code == 2 and "not one of base, ebay" in wrong.stderr
    unknown = cli("--data-dir", str(data_dir), "approve", "20990101T000000Z-000000")
    assert unknown.exit_code == 2 and "invsync runs" in unknown.stderr, unknown.output


class ReportParser(HTMLParser):
    """Collects the counts cells, row markers and sparklines of review.html."""

    def __init__(self) -> None:
        super().__init__()
        self.platform: str | None = None
        self.counts: dict[str, dict[str, int]] = {}
        self.rows: dict[str, list[dict[str, str | None]]] = {}
        self.sparks: dict[str, int] = {}
        self.external: list[str] = []
        self._kind: str | None = None
        self._row: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("data-platform"):
            self.platform = a["data-platform"]
            self.counts[self.platform] = {}
            self.rows[self.platform] = []
            self.sparks[self.platform] = 0
        elif tag == "td" and a.get("data-kind"):
            self._kind = a["data-kind"]
        elif tag == "tr" and "data-listing" in a and self.platform:
            self.rows[self.platform].append(a)
        elif tag == "svg" and self.platform:
            self.sparks[self.platform] += 1
        if tag in ("script", "link", "img") or any(  # links to Amazon are fine; loads are not
            (v or "").startswith("http") for k, v in attrs if k == "src"
        ):
            self.external.append(tag)

    def handle_data(self, data: str) -> None:
        if self._kind and self.platform:
            self.counts[self.platform][self._kind] = int(data)
            self._kind = None


def test_review_html_and_csvs_show_the_run(cli, data_dir: Path) -> None:
    base, ebay = _listings()
    # An earlier run gives the sparklines a history of two points per ASIN.
    write_snapshot(
        data_dir,
        "20250531T000000Z-000001",
        [observation(asin(n), price_jpy=900) for n in range(1, N + 1)],
    )
    snapshot = [observation(asin(1), "no_offer"), observation(asin(2), "api_error")]
    snapshot += [observation(asin(n), price_jpy=1000) for n in range(3, N + 1)]
    base[2]["stock"] = 0  # item 3 restocks
    base[3]["price_jpy"] = 2000  # item 4: 2,000 → 1,400, a 30 % drop: not held
    base[4]["price_jpy"] = 700  # item 5: 700 → 1,400, 100 % up: held
    seed_run(data_dir, RUN, base=base, ebay=ebay, snapshot=snapshot, unique_asins=N)
    assert cli("--data-dir", str(data_dir), "transform").exit_code == 0
    review = cli("--data-dir", str(data_dir), "review")
    assert review.exit_code == 0  # item 5 and the eBay price moves are held: shown, not an error
    assert "Report:" in review.stdout

    report = data_dir / "reviews" / RUN / "review.html"
    parser = ReportParser()
    parser.feed(report.read_text(encoding="utf-8"))
    assert parser.counts["base"] == {
        "price_up": 2,
        "price_down": 1,
        "out_of_stock": 1,
        "restock": 1,
        "total": 5,
        "held": 1,
    }
    assert [r["data-listing"] for r in parser.rows["base"] if r["data-held"] == "true"] == ["5"]
    assert len(parser.rows["base"]) == 5
    # Every row with an Amazon price history has its sparkline; item 1 (no_offer now) had
    # a price in the earlier run, so all five do.
    assert parser.sparks["base"] == 5
    assert parser.external == []  # self-contained
    csv = pl.read_csv(data_dir / "reviews" / RUN / "diff_base.csv")
    assert csv.height == 5 and set(csv["listing_key"]) == {1, 3, 4, 5, 6}
    assert set(csv["run_id"]) == {RUN} and set(csv["platform"]) == {"base"}
    assert set(csv["currency"]) == {"JPY"}
    assert (data_dir / "reviews" / RUN / "diff_ebay.csv").is_file()


def _journal(data_dir: Path) -> dict[tuple[str, str], str]:
    with opened(data_dir) as con:
        rows = con.execute(
            "select listing_key, change_id, state from push_journal where run_id = $r",
            {"r": RUN},
        ).fetchall()
    return {(key, change): state for key, change, state in rows}


def _journal_gate_rows(data_dir: Path) -> pl.DataFrame:
    """What a load journals before its first call, without making it: a load that crashed
    (or was stopped) right after journaling."""
    from pipeline import journal

    ws = open_workspace(data_dir=data_dir, environ={})
    with opened(data_dir) as con, decisions_store(data_dir) as store:
        gate = load_gate(ws, con, RUN, "base", store)
        journal.record_pending(con, gate.rows)
    return gate.rows


def test_re_transforming_a_partly_loaded_run_voids_its_stale_rows(cli, data_dir: Path) -> None:
    """A run journaled (not yet sent) and then transformed again on different Amazon data:
    the old targets are void in the same transaction that records the new diff, and a load
    sends only the new changes (the approval of an old change does not carry over)."""
    _seed_one_held_drop(data_dir)
    assert cli("--data-dir", str(data_dir), "approve", RUN, "--listing", "1").exit_code == 0
    old = _journal_gate_rows(data_dir)
    assert sorted(old["listing_key"]) == ["1", "2", "3", "4", "5", "6"]
    assert set(_journal(data_dir).values()) == {"pending"}

    write_snapshot(data_dir, RUN, [observation(asin(n), price_jpy=1200) for n in range(1, N + 1)])
    _transform(data_dir)
    states = _journal(data_dir)
    assert {states[(k, c)] for k, c in old.select("listing_key", "change_id").rows()} == {"void"}
    rows, _ = _loadable(data_dir, "base")
    assert "1" not in rows["listing_key"].to_list()  # its new change waits for a person
    assert not set(rows["change_id"]) & set(old["change_id"])


def test_a_crash_between_the_new_diff_and_its_record_releases_nothing_stale(
    cli, data_dir: Path
) -> None:
    """Transform writes the new diff file and dies before it commits: the old approval
    binds to the old change only, so the new (below cost) row of that listing is not
    released, and journaling the new rows voids the old targets of the same listings."""
    from pipeline import pricing, transform
    from pipeline.snapshots import read_snapshot
    from pipeline.warehouse import write_parquet_atomic

    _seed_one_held_drop(data_dir)
    assert cli("--data-dir", str(data_dir), "approve", RUN, "--listing", "1").exit_code == 0
    old = _journal_gate_rows(data_dir)

    # Amazon's cost of item 1 jumps above its price: the new change of item 1 is a loss
    write_snapshot(
        data_dir,
        RUN,
        [observation(asin(1), price_jpy=5000)]
        + [observation(asin(n), price_jpy=1000) for n in range(2, N + 1)],
    )
    ws = open_workspace(data_dir=data_dir, environ={})
    with opened(data_dir) as con:
        computed = transform.compute_diffs(
            con,
            run_id=RUN,
            snapshot=read_snapshot(data_dir, RUN),
            settings=ws.settings,
            as_of=datetime.now(UTC),
            fx=pricing.resolve_fx(ws.settings, datetime.now(UTC)),
            platforms=("base",),
        )
    write_parquet_atomic(computed.frames["base"], transform.diff_path(data_dir, RUN, "base"))
    # … and the process dies here: no _store, the journal still holds the old targets

    rows, _ = _loadable(data_dir, "base")
    item = rows.filter(pl.col("listing_key") == "1")
    assert item.filter(pl.col("action") == "change").is_empty()  # the approval does not apply
    assert set(item["change_id"]).isdisjoint(old["change_id"])
    new = _journal_gate_rows(data_dir)
    states = _journal(data_dir)
    old_item = old.filter(pl.col("listing_key") == "1")["change_id"].item()
    assert states[("1", old_item)] == "void"
    assert all(
        states[(k, c)] == "pending" for k, c in new.select("listing_key", "change_id").rows()
    )


def test_a_later_run_applies_an_earlier_decision_on_the_same_change_only(
    cli, data_dir: Path
) -> None:
    """Decisions belong to changes, not runs: approving run A's held row releases the same
    change when run B proposes it again from the same Amazon values — and the stale run A
    itself then loads nothing, since B is newer."""
    from tests.sql.frames import insert_run

    prices = _seed_one_held_drop(data_dir)
    assert cli("--data-dir", str(data_dir), "approve", RUN, "--listing", "1").exit_code == 0

    later = "20250601T010000Z-6f6f6f"
    with opened(data_dir) as con:
        insert_run(con, later, N)
    write_snapshot(data_dir, later, prices)
    ws = open_workspace(data_dir=data_dir, environ={})
    with opened(data_dir) as con, decisions_store(data_dir) as store:
        transform_run(ws, con, later)
        gate = load_gate(ws, con, later, "base", store)
        assert gate.rows.filter(pl.col("listing_key") == "1")["action"].to_list() == ["change"]
        stale = load_gate(ws, con, RUN, "base", store)
    assert stale.rows.is_empty() and stale.newer_run == later
    assert stale.skipped == {"superseded": N}
