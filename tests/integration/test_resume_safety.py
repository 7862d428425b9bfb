"""Resume is safe: a sync stopped (SIGTERM) or killed (kill -9) and resumed never pushes over
a hand edit made meanwhile, never applies a change twice, and never leaves a run `running`.

Each test runs real syncs as subprocesses against a sandbox the test owns (its BASE world
is edited by hand through the real ``items/edit`` call, as a person in BASE's admin would),
and counts what reached the platforms through the sandbox ledger."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.clients.factory import base_client
from pipeline.config import open_workspace
from tests.conftest import _environment

pytestmark = pytest.mark.slow

SMALL_WORLD = 300  # ASINs: about 450 listings


def query(data: Path, sql: str, params: dict | None = None) -> list[tuple]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


def sync_runs(data: Path) -> list[tuple[str, str]]:
    return query(
        data, "select run_id, outcome from runs where command = 'sync' order by started_at"
    )


def base_changes(sandbox: Any) -> list[Any]:
    with sandbox.state.lock:
        return [c for c in sandbox.state.ledger.changes if c.platform == "base"]


def all_changes(sandbox: Any) -> list[Any]:
    with sandbox.state.lock:
        return list(sandbox.state.ledger.changes)


def set_slow(sandbox: Any, ms: int) -> None:
    with sandbox.state.lock:
        sandbox.state.set_faults({"slow_ms": ms} if ms else None)


def start_sync(sandbox: Any, out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline", "sync"],
            stdout=sink, stderr=subprocess.STDOUT, env=_environment(sandbox.env()),
        )  # fmt: skip


def wait_until(proc: subprocess.Popen[bytes], out: Path, ready: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert proc.poll() is None, f"the sync ended before the moment:\n{out.read_text()}"
        assert time.monotonic() < deadline, f"the moment never came:\n{out.read_text()}"
        time.sleep(0.02)


def applied_twice(changes: list[Any], hand: set[tuple[str, str]] = frozenset()) -> list[Any]:
    """Changes invsync applied more than once: the same listing given the same values again
    (hand edits left out)."""
    counts = Counter(
        (c.platform, c.account, c.key, tuple(sorted(c.changes.items())))
        for c in changes
        if (c.platform, c.key) not in hand
    )
    return [key for key, n in counts.items() if n > 1]


def test_a_sync_stopped_in_its_load_and_hand_edited_meanwhile_resumes_without_pushing_over_the_edits(
    start_sandbox, cli, clean_environment: Path
) -> None:
    data = clean_environment / "data"
    sandbox = start_sandbox(time_scale=100.0, n_asins=SMALL_WORLD)
    set_slow(sandbox, 60)  # ~15 BASE edits a second: the SIGTERM lands inside the load
    out = clean_environment / "first.out"
    first = start_sync(sandbox, out)
    try:
        wait_until(first, out, lambda: len(base_changes(sandbox)) >= 5, seconds=180)
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)
    assert first.returncode == 0, out.read_text()
    set_slow(sandbox, 0)
    ((run_id, outcome),) = sync_runs(data)
    assert outcome == "interrupted"
    pending = query(
        data,
        "select account_id, listing_key, old_price_minor from push_journal"
        " where run_id = $r and platform = 'base' and state = 'pending'"
        " and new_quantity > 0 and old_quantity > 0 order by listing_key limit 30",
        {"r": run_id},
    )
    assert len(pending) >= 10, "the load finished before the stop: nothing left to resume"

    # a person sets those items to stock 0 in BASE's admin while the run is stopped
    ws = open_workspace(data_dir=data, environ=sandbox.env())
    edited: set[tuple[str, str]] = set()
    for account_id, item_id, _ in pending:
        client = base_client(ws, ws.settings.account(account_id))
        item = client.item_detail(int(item_id))
        assert item is not None
        client.edit_item(int(item_id), price=int(item["price"]), stock=0)
        edited.add(("base", str(item_id)))
    mark = len(all_changes(sandbox))

    resumed = cli("sync", env=sandbox.env(), timeout=300)
    assert resumed.exit_code == 3, resumed.output  # held: the hand edits are drift
    assert f"Run {run_id} (sandbox, resumed)" in resumed.stdout
    assert [r for r, _ in sync_runs(data)] == [run_id]
    assert f"{len(pending)} changed by hand since the stop (held as drift" in resumed.stdout

    after = all_changes(sandbox)[mark:]
    pushed_over = [c for c in after if (c.platform, c.key) in edited]
    assert pushed_over == [], f"{len(pushed_over)} hand-edited items were pushed back"
    for _, item_id, _ in pending:  # still 0 on BASE, and held locally as drift
        assert query(
            data,
            "select drift_detected_at is not null, stock from listings_base where item_id = $i",
            {"i": int(item_id)},
        ) == [(True, 0)]
    assert applied_twice(all_changes(sandbox), edited) == []


@pytest.mark.parametrize("moment", ["pull", "fetch", "load"])
def test_a_sync_killed_anywhere_is_resumed_by_the_next_sync_and_nothing_is_applied_twice(
    moment: str, start_sandbox, cli, clean_environment: Path
) -> None:
    data = clean_environment / "data"
    sandbox = start_sandbox(time_scale=100.0, n_asins=SMALL_WORLD)

    def offers_calls() -> int:
        with sandbox.state.lock:
            return sum(1 for c in sandbox.state.ledger.calls if c.api == "spapi" and c.items)

    def base_calls() -> int:
        with sandbox.state.lock:
            return sum(1 for c in sandbox.state.ledger.calls if c.api == "base")

    if moment == "pull":  # before its fetch was planned: the resumed run extracts again
        set_slow(sandbox, 400)
        ready = lambda: base_calls() >= 2  # noqa: E731
    elif moment == "fetch":
        set_slow(sandbox, 400)  # 15 batches, ~2.5 a second
        ready = lambda: offers_calls() >= 3  # noqa: E731
    else:
        set_slow(sandbox, 60)
        ready = lambda: len(base_changes(sandbox)) >= 7  # noqa: E731
    out = clean_environment / "killed.out"
    victim = start_sync(sandbox, out)
    try:
        wait_until(victim, out, ready, seconds=180)
    finally:
        victim.kill()  # SIGKILL: no clean-up at all, the run stays `running`
        victim.wait(timeout=60)
    set_slow(sandbox, 0)
    ((run_id, outcome),) = sync_runs(data)
    assert outcome == "running"

    result = cli("sync", env=sandbox.env(), timeout=300)
    assert result.exit_code in (0, 3), result.output
    assert f"Run {run_id} was left running by a process that is gone" in result.stderr
    assert f"Run {run_id} (sandbox, resumed)" in result.stdout
    ((again, outcome),) = sync_runs(data)
    assert again == run_id and outcome in ("ok", "held")
    assert applied_twice(all_changes(sandbox)) == []
    # nothing the killed process left unconfirmed stays so
    assert query(
        data,
        "select count(*) from push_journal where run_id = $r and state = 'sent'",
        {"r": run_id},
    ) == [(0,)]


def test_a_fetch_stopped_by_an_error_after_its_run_started_is_recorded_failed(
    cli, clean_environment: Path
) -> None:
    data = clean_environment / "data"
    Path("invsync.toml").write_text(f"[sandbox]\nn_asins = {SMALL_WORLD}\ntime_scale = 400\n")
    assert cli("listings", "pull", "--platform", "base").exit_code == 0
    result = cli("fetch", "--max-items", "-1")
    assert result.exit_code != 0
    assert query(data, "select count(*) from runs where outcome = 'running'") == [(0,)]


def test_dead_runs_that_cannot_be_resumed_safely_are_closed_with_their_reason(
    cli, clean_environment: Path
) -> None:
    data = clean_environment / "data"
    Path("invsync.toml").write_text(f"[sandbox]\nn_asins = {SMALL_WORLD}\ntime_scale = 400\n")
    assert cli("sync", timeout=300).exit_code in (0, 3)
    con = duckdb.connect(str(data / "warehouse.duckdb"))
    try:  # two syncs whose processes died: an old one, and a newer one run in live mode
        con.execute(
            "insert into runs (run_id, command, mode, operation, started_at, outcome) values"
            " ('20261101T000000Z-old000', 'sync', 'sandbox', 'item_offers',"
            "  now() - interval 30 hours, 'running'),"
            " ('20261101T000000Z-live00', 'sync', 'live', 'item_offers',"
            "  now(), 'running')"
        )
    finally:
        con.close()
    result = cli("sync", timeout=300)
    assert result.exit_code in (0, 3), result.output
    assert "Run 20261101T000000Z-live00 is not resumed: it ran in live mode" in result.stderr
    closed = dict(
        query(
            data,
            "select run_id, message from runs where run_id like '20261101T000000Z-%'"
            " and outcome = 'failed'",
        )
    )
    assert (
        "it ran in live mode and this sync runs in sandbox mode"
        in closed["20261101T000000Z-live00"]
    )
    assert "its process is gone" in closed["20261101T000000Z-old000"]
    assert query(data, "select count(*) from runs where outcome = 'running'") == [(0,)]
    assert len(sync_runs(data)) == 4  # the sync started a run of its own


def test_a_push_the_killed_process_applied_but_never_confirmed_is_ok_not_drift(
    start_sandbox, cli, clean_environment: Path
) -> None:
    data = clean_environment / "data"
    sandbox = start_sandbox(time_scale=100.0, n_asins=SMALL_WORLD)
    set_slow(sandbox, 60)
    out = clean_environment / "killed.out"
    victim = start_sync(sandbox, out)
    try:
        wait_until(victim, out, lambda: len(base_changes(sandbox)) >= 5, seconds=180)
    finally:
        victim.kill()
        victim.wait(timeout=60)
    set_slow(sandbox, 0)
    ((run_id, _),) = sync_runs(data)
    # the state kill -9 leaves when it lands between BASE's answer and the journal's commit:
    # the row is `sent` and its change is on BASE
    account_id, item_id, change_id, price, stock = query(
        data,
        "select account_id, listing_key, change_id, new_price_minor, new_quantity"
        " from push_journal as j where run_id = $r and platform = 'base' and state = 'pending'"
        " and new_quantity > 0 and new_quantity <> old_quantity and action = 'change'"
        " and (new_visible is null or new_visible = old_visible)"
        " and not exists (select 1 from listings_base as l where l.item_id = j.listing_key::bigint"
        "  and l.has_variations)"
        " order by listing_key limit 1",
        {"r": run_id},
    )[0]
    ws = open_workspace(data_dir=data, environ=sandbox.env())
    base_client(ws, ws.settings.account(account_id)).edit_item(
        int(item_id), price=int(price), stock=int(stock)
    )
    con = duckdb.connect(str(data / "warehouse.duckdb"))
    try:
        con.execute(
            "update push_journal set state = 'sent', attempts = attempts + 1, sent_at = now()"
            " where run_id = $r and change_id = $c",
            {"r": run_id, "c": change_id},
        )
    finally:
        con.close()
    mark = len(all_changes(sandbox))

    result = cli("sync", env=sandbox.env(), timeout=300)
    assert result.exit_code in (0, 3), result.output
    assert [r for r, _ in sync_runs(data)] == [run_id]
    assert query(
        data,
        "select state from push_journal where run_id = $r and change_id = $c",
        {"r": run_id, "c": change_id},
    ) == [("ok",)]
    assert query(
        data,
        "select drift_detected_at is null, stock from listings_base where item_id = $i",
        {"i": int(item_id)},
    ) == [(True, int(stock))]  # our own change, not a hand edit
    assert [c for c in all_changes(sandbox)[mark:] if c.key == str(item_id)] == []
    assert applied_twice(all_changes(sandbox)) == []
