"""Golden pricing cases (tests/sql/golden/*.toml, format in its README.md): each runs through
the DuckDB SQL transform and through the Python reference, and both must give ``expect``."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline import pricing
from pipeline.config import parse_settings
from pipeline.errors import ConfigError
from pipeline.transform import compute_diffs
from pipeline.warehouse import apply_migrations
from tests.sql.frames import insert_base, insert_ebay, insert_run, observation, write_snapshot

GOLDEN = Path(__file__).parent / "golden"
AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
RUN_ID = "20250601T000000Z-601d3e"
ASIN = "B000GOLDEN"
DEFAULT_FX = {"jpy_per_usd": 150, "as_of": datetime(2025, 5, 31, tzinfo=UTC)}
ACCOUNTS = {"base": "shop1", "ebay": "ebay-main"}
# What a decision row is compared on, named as in expect (the diff's column). One diff
# shape: prices in minor units of the row's currency; visibility is BASE's only.
DECISION_COLUMNS = {
    "new_price": "new_price_minor",
    "new_quantity": "new_quantity",
    "expected_profit": "expected_profit_minor",
    "target_price": "target_price_minor",
}
SQL_COLUMNS = {
    "base": {**DECISION_COLUMNS, "new_visible": "new_visible"},
    "ebay": DECISION_COLUMNS,
}


def golden_cases() -> list[Any]:
    cases = []
    for path in sorted(GOLDEN.glob("*.toml")):
        for case in tomllib.loads(path.read_text(encoding="utf-8"))["case"]:
            cases.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return cases


def _settings(case: dict[str, Any]):
    config = {**case.get("config", {})}
    if case.get("platform", "base") == "ebay" and "fx" not in config:
        config["fx"] = DEFAULT_FX
    return parse_settings(config, "golden case")


def _sql_row(case: dict[str, Any], settings, fx, tmp: Path) -> dict[str, Any] | None:
    platform = case.get("platform", "base")
    account = case.get("account", ACCOUNTS[platform])
    listing, amazon = case["listing"], case.get("amazon", {})
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        apply_migrations(con)
        insert_run(con, RUN_ID, None)
        drift = AS_OF if listing.get("drifted") else None
        if platform == "base":
            insert_base(
                con,
                [
                    {
                        "account_id": account,
                        "item_id": 1,
                        "asin": ASIN,
                        "price_jpy": listing["price"],
                        "stock": listing.get("quantity", 1),
                        "visible": listing.get("visible", True),
                        "drift": drift,
                    }
                ],
            )
        else:
            insert_ebay(
                con,
                [
                    {
                        "account_id": account,
                        "sku": "SKU-1",
                        "asin": ASIN,
                        "price_cents": listing["price"],
                        "quantity": listing.get("quantity", 1),
                        "drift": drift,
                    }
                ],
            )
        rows = []
        if amazon.get("status") != "missing":
            rows.append(_observation_row(amazon))
        else:
            rows.append(observation("B000000OTH", price_jpy=1000))
        snapshot = write_snapshot(tmp, RUN_ID, rows, now=AS_OF)
        computed = compute_diffs(
            con,
            run_id=RUN_ID,
            snapshot=snapshot,
            settings=settings,
            as_of=AS_OF,
            fx=fx,
            platforms=(platform,),
        )
    finally:
        con.close()
    frame = computed.frames[platform]
    assert frame.height <= 1
    return frame.to_dicts()[0] if frame.height else None


def _observation_row(amazon: dict[str, Any]) -> dict[str, Any]:
    fetched = AS_OF - timedelta(hours=amazon.get("age_hours", 0))
    fallback_age = amazon.get("fallback_age_hours")
    return observation(
        ASIN,
        status=amazon.get("status", "ok"),
        price_jpy=amazon.get("price_jpy"),
        in_stock=amazon.get("in_stock"),
        fetched_at=fetched,
        fallback_age_seconds=None if fallback_age is None else fallback_age * 3600.0,
    )


def _reference(case: dict[str, Any], settings, fx) -> pricing.Decision | None:
    platform = case.get("platform", "base")
    account_id = case.get("account", ACCOUNTS[platform])
    listing, amazon = case["listing"], case.get("amazon", {})
    rules = {r.account_id: r for r in pricing.compile_rules(settings, platform, fx)}
    obs = None
    if amazon.get("status") != "missing":
        row = _observation_row(amazon)
        obs = pricing.Observation(
            status=row["status"],
            cost_jpy=row["price_jpy"],
            in_stock=row["in_stock"],
            fetched_at=row["fetched_at"],
            fallback_age_seconds=row["fallback_age_seconds"],
        )
    item = pricing.Listing(
        platform=platform,
        account_id=account_id,
        listing_key="1",
        asin=ASIN,
        price=listing["price"],
        quantity=listing.get("quantity", 1),
        visible=listing.get("visible", True) if platform == "base" else True,
        drifted=bool(listing.get("drifted")),
    )
    guard = pricing.compile_guardrails(settings)
    return pricing.decide(item, obs, rules[account_id], guard, AS_OF)


@pytest.mark.parametrize("case", golden_cases())
def test_golden_case(case: dict[str, Any], tmp_path: Path) -> None:
    platform = case.get("platform", "base")
    expect = case["expect"]
    if "fx_csv" in case:
        (tmp_path / "fx.csv").write_text(case["fx_csv"], encoding="utf-8")
    settings = _settings(case)
    fx = None
    if platform == "ebay":
        try:
            fx = pricing.resolve_fx(settings, AS_OF, config_dir=tmp_path)
        except ConfigError as exc:
            assert "error" in expect, f"unexpected error: {exc.message}"
            assert expect["error"] in exc.message
            return
        assert "error" not in expect, "expected an FX error"

    sql = _sql_row(case, settings, fx, tmp_path)
    ref = _reference(case, settings, fx)
    if expect.get("change") == "none":
        assert sql is None, f"SQL changed the listing: {sql}"
        assert ref is None, f"the reference changed the listing: {ref}"
        return
    assert sql is not None and ref is not None, (sql, ref)
    # SQL and the reference agree on everything, whatever the case checks.
    columns = SQL_COLUMNS[platform]
    assert sql["change_kind"] == ref.change_kind
    assert sql["held"] == ref.held and sql["hold_reason"] == ref.hold_reason
    for key, column in columns.items():
        assert sql[column] == getattr(ref, key), key
    # And both give what the case says.
    for key, value in expect.items():
        if key in ("change_kind", "held", "hold_reason"):
            assert sql[key] == value, key
        else:
            assert sql[columns[key]] == value, key
