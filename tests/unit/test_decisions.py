"""The decisions store: a decision is bound to its change id, the latest decision on a change
wins, a breaker release is per run and platform, and a writer kept busy past the wait is a
sentence (exit 2), never a bug."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pipeline.decisions import DecisionStore, opened, store_path
from pipeline.errors import DecisionsBusyError, UsageError


def _row(change_id: str, key: str = "1") -> dict[str, str]:
    return {
        "change_id": change_id,
        "platform": "base",
        "account_id": "shop1",
        "listing_key": key,
        "asin": "B000000001",
        "run_id": "20260101T000000Z-aaaaaa",
    }


def test_a_decision_binds_to_its_change_and_the_latest_wins(tmp_path: Path) -> None:
    with opened(tmp_path) as store:
        assert store.record([_row("a" * 32), _row("b" * 32, "2")], "approve") == 2
        assert store.record([_row("a" * 32)], "reject", by="workbench", note="too high") == 1
        # another change of the same listing is a different change: undecided
        assert store.decisions(["a" * 32, "b" * 32, "c" * 32]) == {
            "a" * 32: "reject",
            "b" * 32: "approve",
        }
        latest = {d.change_id: d for d in store.all()}
        assert (latest["a" * 32].decided_by, latest["a" * 32].note) == ("workbench", "too high")
        with pytest.raises(UsageError, match="not one of approve, reject, hold"):
            store.record([_row("a" * 32)], "ship-it")


def test_a_breaker_release_is_per_run_and_platform(tmp_path: Path) -> None:
    with opened(tmp_path) as store:
        assert store.release_breaker("r1", "ebay") is True
        assert store.release_breaker("r1", "ebay") is False  # already released
        assert store.breaker_released("r1", "ebay")
        assert not store.breaker_released("r1", "base")
        assert not store.breaker_released("r2", "ebay")


def test_a_writer_held_past_the_wait_is_a_sentence(tmp_path: Path) -> None:
    DecisionStore(tmp_path).close()  # create the file and its tables
    other = sqlite3.connect(store_path(tmp_path), isolation_level=None)
    other.execute("begin immediate")  # another process in the middle of recording
    try:
        store = DecisionStore(tmp_path, busy_seconds=0.2)
        with pytest.raises(DecisionsBusyError, match="is busy") as caught:
            store.record([_row("a" * 32)], "approve")
        assert caught.value.exit_code == 2
        assert store.decisions(["a" * 32]) == {}  # readers are never blocked (WAL)
        store.close()
    finally:
        other.execute("rollback")
        other.close()
