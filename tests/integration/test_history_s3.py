"""History on an S3-compatible store (``[history] url``), against moto's real S3 server on
loopback (tests/integration/s3kit.py): demo syncs mirror their Parquet history to the bucket
and upload only what is new; the analysts' views read the store (they answer with the local
history gone) as the local views would; polars and pandas read the remote snapshots as
docs/analysts.md shows; a stopped store fails the publish with one sentence, loses nothing,
and the next sync uploads what was missing; the keys come only from the workspace's
environment and never appear in analytics.duckdb, the log or the output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pytest

from pipeline import history_store, views, warehouse
from pipeline.config import Settings, Workspace, open_workspace, parse_settings
from pipeline.errors import ConfigError, MissingCredentialError, TransientApiError
from tests.integration.s3kit import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Store
from tests.sql.test_views import three_runs

PREFIX = "seller-1"
SMALL_DEMO = "[sandbox]\nn_asins = 300\ntime_scale = 400\n"  # the whole flow in seconds
EXPORTS = ("runs", "push_journal", "listings_base", "listings_ebay", "review_breakers",
           "decisions", "breaker_releases")  # fmt: skip
# analyst views asked of both the remote and the local history; ordered, so rows compare
QUESTIONS = (
    "select count(*) as n, count(distinct asin) as asins, sum(price) as yen from price_history",
    "select run_id, asins, coverage, spapi_calls from fetch_health order by run_id",
    "select run_id, platform, change_kind, count(*) as n from diffs group by all order by all",
    "select count(*) as n, sum(price_minor) as minor from listing_history",
    "select asin, price, in_stock from latest_price order by asin",
    "select run_id, outcome from runs order by run_id",
)


def demo_toml(store: S3Store) -> None:
    Path("invsync.toml").write_text(
        SMALL_DEMO + f'[history]\nurl = "{store.url(PREFIX)}"\n', encoding="utf-8"
    )


def run_files(keys: list[str], run_id: str) -> list[str]:
    return [key for key in keys if f"run_id={run_id}/" in key]


def run_ids(data: Path) -> list[str]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        return [r[0] for r in con.execute("select run_id from runs order by run_id").fetchall()]
    finally:
        con.close()


def answers(cli, env: dict[str, str]) -> list[list[dict]]:
    """Every question of :data:`QUESTIONS` through ``invsync sql --format json``."""
    found = []
    for question in QUESTIONS:
        result = cli("sql", "--format", "json", question, env=env)
        assert result.exit_code == 0, result.output
        found.append(json.loads(result.stdout))
    return found


def local_answers(data: Path, copy: Path) -> list[list[dict]]:
    """The same questions on a copy of the data directory with its views over the local
    folders (published with no store)."""
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("analytics.duckdb*", "*.lock"))
    with warehouse.opened(copy, wait=0) as con:
        views.publish(con, copy)
    con = views.open_for_reading(copy)
    try:
        con.execute("set TimeZone = 'UTC'")
        found = []
        for question in QUESTIONS:
            cursor = con.execute(question)
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            found.append(json.loads(json.dumps(rows, default=str)))
        return found
    finally:
        con.close()


def uploads_logged(data: Path) -> list[str]:
    lines = (data / "logs" / "invsync.jsonl").read_text(encoding="utf-8").splitlines()
    return [
        record["message"]
        for record in map(json.loads, lines)
        if str(record.get("message", "")).startswith("History uploaded")
    ]


@pytest.mark.slow
def test_demo_syncs_keep_their_history_in_the_store_and_the_views_read_it_there(
    cli, s3_store: S3Store, tmp_path: Path
) -> None:
    data = Path.cwd() / "data"
    demo_toml(s3_store)
    first = cli("sync", env=s3_store.env, timeout=300)
    assert first.exit_code in (0, 3), first.output  # 3: the gate held a few demo rows
    (one,) = run_ids(data)
    keys = s3_store.keys(PREFIX)
    assert sorted(run_files(keys, one)) == sorted(
        f"{PREFIX}/{path}"
        for path in (
            f"snapshots/amazon/dt={one[:4]}-{one[4:6]}-{one[6:8]}/run_id={one}/part-0.parquet",
            f"diffs/run_id={one}/platform=base/diff.parquet",
            f"diffs/run_id={one}/platform=ebay/diff.parquet",
            f"listings/run_id={one}/platform=base/listings.parquet",
            f"listings/run_id={one}/platform=ebay/listings.parquet",
        )
    )
    assert {f"{PREFIX}/exports/{t}/{t}.parquet" for t in EXPORTS} <= set(keys)
    # nothing that stays with the worker
    assert not [k for k in keys if k.split("/")[1] in ("staging", "secrets", "sandbox", "logs")]
    assert not [k for k in keys if k.endswith((".duckdb", ".lock", ".sqlite", ".json"))]

    second = cli("sync", env=s3_store.env, timeout=300)
    assert second.exit_code in (0, 3), second.output
    _, two = run_ids(data)
    # the second publish sent its own run's five files and the seven exports, nothing older
    logged = uploads_logged(data)
    assert len(logged) == 2 and " 12 file(s)" in logged[1] and "5 were there already" in logged[1]
    assert len(run_files(s3_store.keys(PREFIX), two)) == 5
    ws = open_workspace(data_dir=data, environ=s3_store.env, config=Path("invsync.toml"))
    again = history_store.upload_history(ws)
    assert again is not None and again.kept == 10
    assert sorted(again.keys) == sorted(f"exports/{t}/{t}.parquet" for t in EXPORTS)

    # the views name the store, and answer as views over the local folders do
    con = views.open_for_reading(data, history_store.store(ws))
    try:
        (sql,) = con.execute(
            "select sql from duckdb_views() where view_name = 'snapshots'"
        ).fetchone()
    finally:
        con.close()
    assert f"{s3_store.url(PREFIX)}/snapshots/amazon/" in sql and str(data) not in sql
    remote = answers(cli, s3_store.env)
    assert remote == local_answers(data, tmp_path / "local-copy")
    assert remote[0][0]["n"] > 250 and len(remote[1]) == 2

    # the local history gone, the views still answer the same: they read the store
    for folder in ("snapshots", "diffs", "listings", "exports", "loads"):
        shutil.rmtree(data / folder, ignore_errors=True)
    assert answers(cli, s3_store.env) == remote
    history = cli("history", "B002EQCM50", env=s3_store.env)  # the warehouse's own views
    assert history.exit_code == 0, history.output
    assert "B002EQCM50" in history.output

    # the analysts' Python readers of docs/analysts.md, on the remote snapshots
    url = s3_store.url(PREFIX)
    options = {
        "aws_access_key_id": ACCESS_KEY_ID, "aws_secret_access_key": SECRET_ACCESS_KEY,
        "aws_endpoint_url": s3_store.endpoint, "aws_region": "us-east-1",
        "aws_allow_http": "true",
    }  # fmt: skip
    snapshots = pl.scan_parquet(
        f"{url}/snapshots/amazon/**/*.parquet", hive_partitioning=True, storage_options=options
    ).collect()
    assert sorted(snapshots["run_id"].unique()) == [one, two]
    assert snapshots.schema["dt"] == pl.Date and len(snapshots) > 500
    frame = pd.read_parquet(
        f"{url}/snapshots/amazon",
        storage_options={
            "key": ACCESS_KEY_ID, "secret": SECRET_ACCESS_KEY,
            "client_kwargs": {"endpoint_url": s3_store.endpoint, "region_name": "us-east-1"},
        },
    )  # fmt: skip
    assert sorted(frame["run_id"].astype(str).unique()) == [one, two]
    assert len(frame) == len(snapshots) and "dt" in frame.columns

    # the keys are nowhere: not in the views' database, the log or any output
    written = [
        (data / "analytics.duckdb").read_bytes(),
        (data / "warehouse.duckdb").read_bytes(),
        (data / "logs" / "invsync.jsonl").read_bytes(),
        (first.output + second.output + history.output).encode(),
    ]
    for value in (SECRET_ACCESS_KEY, ACCESS_KEY_ID):
        assert not [blob for blob in written if value.encode() in blob]


@pytest.mark.slow
def test_a_stopped_store_fails_the_publish_and_the_next_sync_uploads_what_was_missing(
    cli, s3_store: S3Store
) -> None:
    data = Path.cwd() / "data"
    demo_toml(s3_store)
    assert cli("sync", env=s3_store.env, timeout=300).exit_code in (0, 3)
    before = answers(cli, s3_store.env)
    s3_store.stop()
    down = cli("sync", env=s3_store.env, timeout=300)
    assert down.exit_code == 4, down.output
    sentence = down.stderr.strip().splitlines()[-1]
    assert sentence.startswith(f"Error: Could not upload the history to {s3_store.url(PREFIX)}")
    assert "EndpointConnectionError" in sentence and "next sync uploads what is missing" in sentence
    assert "Traceback" not in down.output
    one, two = run_ids(data)
    # nothing local is lost: the run's files are all there
    assert len([p for p in data.rglob("*.parquet") if f"run_id={two}" in str(p)]) == 5

    s3_store.start()
    assert run_files(s3_store.keys(PREFIX), two) == []
    assert answers(cli, s3_store.env) == before  # the views were left reading the store
    third = cli("sync", env=s3_store.env, timeout=300)
    assert third.exit_code in (0, 3), third.output
    three = run_ids(data)[2]
    keys = s3_store.keys(PREFIX)
    assert (
        len(run_files(keys, one)) == len(run_files(keys, two)) == len(run_files(keys, three)) == 5
    )
    runs = [row["run_id"] for row in answers(cli, s3_store.env)[1]]
    assert runs == [one, two, three]


def workspace(tmp_path: Path, env: dict[str, str], url: str) -> Workspace:
    config = tmp_path / "invsync.toml"
    config.write_text(f'[history]\nurl = "{url}"\n', encoding="utf-8")
    return open_workspace(config=config, data_dir=tmp_path / "data", environ=env)


def test_the_store_takes_its_keys_and_endpoint_from_the_workspace_only(
    s3_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process environment holds another seller's keys and endpoint: they are ignored."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAOTHERSELLER00001", "AWS_SECRET_ACCESS_KEY": "other-secret-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "eu-west-1",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    data = tmp_path / "data"
    three_runs(data).close()
    ws = workspace(tmp_path, s3_store.env, s3_store.url(PREFIX))
    uploaded = history_store.upload_history(ws)
    assert uploaded is not None and len([k for k in uploaded.keys if "snapshots" in k]) == 3
    assert f"{PREFIX}/snapshots/amazon/dt=2026-11-01/run_id=r2/part-0.parquet" in s3_store.keys(
        PREFIX
    )

    without = {k: v for k, v in s3_store.env.items() if k != "AWS_SECRET_ACCESS_KEY"}
    lacking = workspace(tmp_path, without, s3_store.url(PREFIX))
    with pytest.raises(MissingCredentialError, match=r"needs AWS_SECRET_ACCESS_KEY; put it in"):
        history_store.upload_history(lacking)


def test_publish_with_the_store_down_raises_one_sentence_and_keeps_the_views(
    s3_store: S3Store, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    con = three_runs(data)  # the local history of three runs, published locally
    store = history_store.HistoryStore(s3_store.url(PREFIX), s3_store.env)
    try:
        views.publish(con, data, store)
        s3_store.stop()
        with pytest.raises(TransientApiError) as failed:
            views.publish(con, data, store)
    finally:
        con.close()
    message = failed.value.message
    assert message.startswith(f"Could not upload the history to {s3_store.url(PREFIX)} at ")
    assert failed.value.exit_code == 4 and SECRET_ACCESS_KEY not in message
    assert len(list((data / "snapshots").rglob("*.parquet"))) == 3
    s3_store.start()
    reader = views.open_for_reading(data, store)
    try:
        assert reader.execute("select count(*) from price_history").fetchone() == (7,)
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("gs://bucket/history", "is not an s3:// URL"),
        ("https://s3.example.com/bucket", "is not an s3:// URL"),
        ("s3://", "does not name a bucket"),
        ("s3://Bucket_1/x", "does not name a bucket"),
        ("s3://bucket/it's", "does not name a bucket"),
    ],
)
def test_a_history_url_must_name_an_s3_bucket(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_settings({"history": {"url": url}})


def test_a_history_url_makes_the_aws_keys_secrets_and_leaves_the_digest_alone() -> None:
    local = Settings()
    remote = parse_settings({"history": {"url": "s3://bucket/seller-1/"}})
    assert remote.history.url == "s3://bucket/seller-1"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(remote.secret_variables())
    assert "AWS_SECRET_ACCESS_KEY" not in local.secret_variables()
    assert remote.digest() == local.digest()  # where files are kept decides nothing in a run


def test_a_bucket_the_store_lacks_is_named_with_the_next_step(
    s3_store: S3Store, tmp_path: Path
) -> None:
    three_runs(tmp_path / "data").close()
    ws = workspace(tmp_path, s3_store.env, f"s3://{s3_store.bucket}-missing/{PREFIX}")
    with pytest.raises(ConfigError, match=r"-missing of \[history\] url .* does not exist at"):
        history_store.upload_history(ws)
