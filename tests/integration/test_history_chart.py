"""`invsync history` and `invsync runs` in the display zone, and the history chart's data: out
of stock is a gap (never a price of ¥0), marked on the time axis, over the three runs of
tests/sql/test_views.py (T0 = 2026-11-01 00:00 UTC, then +3 h and +6 h)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pipeline import history
from pipeline.history import SPARK_OUT_OF_STOCK, chart_series, sparkline
from tests.sql.test_views import T0, three_runs

PNG = b"\x89PNG\r\n\x1a\n"


def _frames(*asins: str) -> list:
    con = three_runs(Path.cwd() / "data")
    try:
        return [history.asin_history(con, asin) for asin in asins]
    finally:
        con.close()


def test_the_chart_draws_out_of_stock_as_a_gap_never_a_price_at_zero() -> None:
    # B000000002: out of stock at T0, then ¥500 and ¥520
    (frame,) = _frames("B000000002")
    series = chart_series(frame)
    assert series.times == [T0, T0 + timedelta(hours=3), T0 + timedelta(hours=6)]
    assert series.prices == [None, 500, 520]
    assert 0 not in series.prices
    assert series.out_of_stock == [T0]
    assert series.out_of_stock_spans == [(T0, T0 + timedelta(hours=3))]


def test_a_stretch_out_of_stock_is_one_span_and_failed_fetches_are_left_out() -> None:
    one, three = _frames("B000000001", "B000000003")
    # B000000001: ¥1,000, then out of stock twice (one stretch to the last observation)
    series = chart_series(one)
    assert series.prices == [1000, None, None]
    assert series.out_of_stock == [T0 + timedelta(hours=3), T0 + timedelta(hours=6)]
    assert series.out_of_stock_spans == [(T0 + timedelta(hours=3), T0 + timedelta(hours=6))]
    # B000000003: api_error and unknown say nothing about price or stock
    failed_then_ok = chart_series(three)
    assert failed_then_ok.times == [T0 + timedelta(hours=6)]
    assert failed_then_ok.prices == [2000] and failed_then_ok.out_of_stock == []


def test_the_sparkline_shows_out_of_stock_as_a_gap_and_no_answer_as_blank() -> None:
    assert sparkline([None, 500, 520], [False, True, True]) == f"{SPARK_OUT_OF_STOCK}▁█"
    assert sparkline([None, None, 2000], [None, None, True]) == "  ▅"
    assert sparkline([100, None, 200], [True, False, True]) == f"▁{SPARK_OUT_OF_STOCK}█"


def test_history_prints_times_in_jst_and_names_the_zone(cli) -> None:
    three_runs(Path.cwd() / "data").close()
    result = cli("history", "B000000002", "--plot", "chart.png")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "B000000002: 3 observations, 3 runs; times in JST (Asia/Tokyo)"
    # T0 is 00:00 UTC, 09:00 in Tokyo; the sparkline's first cell is the out-of-stock gap
    assert lines[1] == (
        f"  price  {SPARK_OUT_OF_STOCK}▁█  2026-11-01 09:00 JST → 2026-11-01 15:00 JST"
    )
    assert f"{SPARK_OUT_OF_STOCK} out of stock (no price)" in lines[2]
    assert "  2026-11-01 09:00 JST          –  out of stock no_offer" in lines
    assert "  2026-11-01 12:00 JST       ¥500  in stock     ok" in lines
    assert Path("chart.png").read_bytes()[:8] == PNG


def test_history_and_runs_in_utc_when_the_display_zone_says_so(cli) -> None:
    three_runs(Path.cwd() / "data").close()
    Path("invsync.toml").write_text('[display]\ntimezone = "UTC"\n')
    shown = cli("history", "B000000002")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[0].endswith("; times in UTC")
    assert "  2026-11-01 03:00 UTC       ¥500  in stock     ok" in shown.stdout
    assert "JST" not in shown.stdout
    runs = cli("runs")
    assert runs.exit_code == 0, runs.output
    assert "times in UTC" in runs.stdout and "2026-11-01 06:00 UTC" in runs.stdout


def test_runs_shows_each_start_in_jst(cli) -> None:
    three_runs(Path.cwd() / "data").close()
    result = cli("runs")
    assert result.exit_code == 0, result.output
    assert "times in JST (Asia/Tokyo)" in result.stdout
    r3 = next(line for line in result.stdout.splitlines() if " r3 " in line)
    assert "2026-11-01 15:00 JST" in r3  # T0 + 6 h in UTC, + 9 h in Tokyo
