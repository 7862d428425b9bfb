"""After faulted loads and pulls, no configured secret (nor a rotated token) is anywhere:
logs, journal and every other table, Parquet files, any file of the data directory, the
command's output and error message."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from pipeline import listings_pull, runs, warehouse
from pipeline.config import open_workspace
from pipeline.redact import secret_values
from pipeline.tokens import store_path
from tests.integration import loadkit


def _table_text(data_dir: Path) -> str:
    with warehouse.opened(data_dir) as con:
        tables = [
            r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
        ]
        parts = []
        for table in tables:
            cursor = con.execute(f'select * from "{table}"')  # names from the catalogue
            parts.append(json.dumps(cursor.fetchall(), default=str, ensure_ascii=False))
        return "\n".join(parts)


def _a_run_to_load(
    sandbox: Any,
    data_dir: Path,
    base_rows: int,
    ebay_rows: int,
    edit_base: Callable[[pl.DataFrame], pl.DataFrame] = lambda frame: frame,
) -> tuple[str, pl.DataFrame, pl.DataFrame]:
    """Both platforms pulled, and a run whose diffs change ``base_rows`` BASE and
    ``ebay_rows`` eBay (Inventory) listings, written where a load reads them."""
    ws = open_workspace(data_dir=data_dir, environ=sandbox.env())
    with warehouse.opened(data_dir) as con:
        listings_pull.run(ws, con, "base")
        listings_pull.run(ws, con, "ebay")
        run_id = runs.start_run(con, ws, "load")
        base = edit_base(loadkit.base_diff(con, run_id, base_rows))
        ebay = loadkit.ebay_diff(con, run_id, ebay_rows, api="inventory")
        loadkit.write_transform_output(con, data_dir, base, "base")
        loadkit.write_transform_output(con, data_dir, ebay, "ebay")
    return run_id, base, ebay


def test_no_secret_survives_a_faulted_run(start_sandbox, data_dir, cli):
    sandbox = start_sandbox(time_scale=100.0, n_asins=200)
    env = sandbox.env()
    run_id, base, ebay = _a_run_to_load(sandbox, data_dir, 20, 30)
    loadkit.set_faults(
        sandbox.url,
        f"bad_item_ids={base['listing_key'][0]},partial_failure_skus={ebay['listing_key'][0]},"
        "ebay_429_rate=0.3",
    )
    first = cli("--debug", "--data-dir", str(data_dir), "load", "--run", run_id, env=env)
    assert first.exit_code == 4, first.output
    loadkit.set_faults(sandbox.url, "expired_tokens")
    second = cli("--debug", "--data-dir", str(data_dir), "load", "--run", run_id, env=env)
    assert second.exit_code == 4, second.output
    pulled = cli("--data-dir", str(data_dir), "listings", "pull", "--platform", "base", env=env)
    assert pulled.exit_code == 4, pulled.output

    store = store_path(data_dir)
    rotated = [
        value
        for entry in json.loads(store.read_text(encoding="utf-8")).values()
        for value in (entry["refresh_token"], entry.get("access_token"))
        if value
    ]
    secrets = secret_values(env) + rotated
    assert len(secrets) >= 10
    haystacks = {
        "output": first.output + second.output + pulled.output,
        "tables": _table_text(data_dir),
    }
    files = [p for p in data_dir.rglob("*") if p.is_file() and p != store]
    assert any(p.suffix == ".parquet" for p in files)
    assert any(p.name.endswith(".jsonl") for p in files)  # the log
    for path in files:
        haystacks[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"a secret is in {where}"
    assert "Error: BASE rejected 1 of" in first.stderr


def test_a_token_echoed_in_an_error_body_is_stored_nowhere(start_sandbox, data_dir, cli):
    """Live error bodies sometimes repeat the token the caller sent. With the sandbox's
    ``echo_token`` fault every error answer does: the BASE access token in a refused
    ``items/edit``, the eBay access token in a 207's per-SKU error. Neither is a variable of
    the environment, and neither has a token's usual prefix; both must still be masked in
    the journal, the views analysts export from, the log and the output, because the
    process held them."""
    sandbox = start_sandbox(time_scale=100.0, n_asins=200)
    env = sandbox.env()

    def over_base_limit(base: pl.DataFrame) -> pl.DataFrame:
        # BASE refuses a price above ¥9,999,999 with validation_error: a stored description
        return base.with_columns(
            pl.when(pl.int_range(pl.len()) == 0)
            .then(10_000_000)
            .otherwise(pl.col("new_price_minor"))
            .alias("new_price_minor")
        )

    run_id, _, ebay = _a_run_to_load(sandbox, data_dir, 6, 6, over_base_limit)
    loadkit.set_faults(
        sandbox.url,
        f"echo_token,partial_failure_skus={ebay['listing_key'][0]}+{ebay['listing_key'][1]}",
    )
    loaded = cli("--debug", "--data-dir", str(data_dir), "load", "--run", run_id, env=env)
    assert loaded.exit_code == 4, loaded.output

    with sandbox.state.lock:
        issued = [
            *sandbox.state.apis["base"].access_tokens,
            *sandbox.state.apis["ebay"].access_tokens,
        ]
    assert len(issued) >= 2
    with warehouse.opened(data_dir) as con:
        said = [
            r[0]
            for r in con.execute(
                "select error_message from push_journal where error_message is not null"
            ).fetchall()
        ]
    # the fault did echo a token into both platforms' failures, and it was masked there
    echoed = [text for text in said if "token presented: ***" in text]
    assert len(echoed) >= 3 and any("バリデーション" in text for text in echoed), said
    store = store_path(data_dir)  # the token store: the one file meant to hold tokens
    files = [p for p in data_dir.rglob("*") if p.is_file() and p != store]
    # the tables include the analyst views (``pushes`` shows error_message): every export
    haystacks = {"output": loaded.output, "tables": _table_text(data_dir)}
    for path in files:
        haystacks[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    for where, text in haystacks.items():
        for token in issued:
            assert token not in text, f"an access token the platform echoed is in {where}"
