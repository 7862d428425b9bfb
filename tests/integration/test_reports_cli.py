"""`invsync runs` and `invsync history` on a warehouse with three runs."""

from __future__ import annotations

from pathlib import Path

from pipeline.history import sparkline
from tests.sql.test_views import three_runs


def test_runs_lists_the_newest_first_with_pace(cli) -> None:
    three_runs(Path.cwd() / "data").close()
    result = cli("runs", "--last", "2")
    assert result.exit_code == 0, result.output
    assert "r3" in result.stdout and "r2" in result.stdout and "r1" not in result.stdout
    assert result.stdout.index("r3") < result.stdout.index("r2")
    assert "1.01" in result.stdout  # fetch 10.1 s against a 10.0 s floor


def test_history_prints_a_sparkline_and_writes_a_png(cli) -> None:
    three_runs(Path.cwd() / "data").close()
    result = cli("history", "B000000002", "--plot", "chart.png")
    assert result.exit_code == 0, result.output
    assert "3 observations, 3 runs" in result.stdout
    assert sparkline([None, 500, 520], [False, True, True]) in result.stdout
    assert Path("chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli("history", "not-an-asin").exit_code == 2


def test_reports_before_any_run_say_what_to_do(cli) -> None:
    result = cli("runs")
    assert result.exit_code == 2 and "invsync sync" in result.stderr


def test_sparkline_scales_between_extremes() -> None:
    assert sparkline([100, 200, None, 150]) == "▁█ ▄"
    assert sparkline([None, None]) == "  "
    assert sparkline([7, 7]) == "▅▅"
