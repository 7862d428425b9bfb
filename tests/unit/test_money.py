"""Every amount shown to a person carries its unit: one formatter, and the summary lines."""

from __future__ import annotations

from pipeline.cli import render
from pipeline.money import money
from pipeline.sync import SyncSummary


def test_money_writes_minor_units_with_their_unit() -> None:
    assert money(8856, "USD") == "$88.56"
    assert money(13999, "USD") == "$139.99"
    assert money(1680, "JPY") == "¥1,680"
    assert money(1234567, "JPY") == "¥1,234,567"
    assert money(-50, "USD") == "-$0.50"
    assert money(5, "usd") == "$0.05"
    assert money(None, "JPY") == "–"
    assert money(1250, "EUR") == "12.50 EUR"  # no symbol known: the code, never bare cents
    assert render.money is money  # the terminal uses the same one


def test_the_sync_summary_shows_the_held_sentence_once_and_protected_listings() -> None:
    summary = SyncSummary(run_id="r1", mode="sandbox", outcome="held")
    summary.message = "Run r1 is held for review: 2 BASE rows; release with `invsync approve r1`."
    summary.protected, summary.paused = 7, 2
    lines = render.sync_summary_lines(summary, "Asia/Tokyo")
    assert lines[-1] == summary.message  # a notice line of its own, not indented, no Error:
    assert sum("is held for review" in line for line in lines) == 1
    assert (
        "  listings protected while held: 7 (5 raised to a profit, 2 paused at quantity 0)" in lines
    )

    ok = SyncSummary(run_id="r2", mode="sandbox", outcome="ok")
    assert not any("protected" in line for line in render.sync_summary_lines(ok, "UTC"))
