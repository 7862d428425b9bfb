"""After faulted loads and pulls, no configured secret (nor a rotated token) is anywhere:
logs, journal and every other table, Parquet files, any file of the data directory, the
command's output and error message."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_no_secret_survives_a_faulted_run(start_sandbox, data_dir, cli):
    sandbox = start_sandbox(time_scale=100.0, n_asins=200)
    env = sandbox.env()
    ws = open_workspace(data_dir=data_dir, environ=env)
    with warehouse.opened(data_dir) as con:
        listings_pull.run(ws, con, "base")
        listings_pull.run(ws, con, "ebay")
        run_id = runs.start_run(con, ws, "load")
        base = loadkit.base_diff(con, run_id, 20)
        ebay = loadkit.ebay_diff(con, run_id, 30, api="inventory")
        loadkit.write_transform_output(con, data_dir, base, "base")
        loadkit.write_transform_output(con, data_dir, ebay, "ebay")
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
