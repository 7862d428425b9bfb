"""The what-if report (`invsync whatif`) opens in headless Chromium: its heading, the
window's totals, one chart per figure with both rule sets drawn, and one row per day
(`make test` runs it when Debian's chromium and chromium-driver are installed). The
history is the bench's synthetic one in the real layout (bench/whatif_bench.py), small."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from bench import whatif_bench
from tests.conftest import run_cli

DAYS, PER_DAY, LISTINGS = 3, 4, 300


@pytest.mark.browser
def test_the_whatif_report_shows_totals_charts_and_days_in_chromium(
    browser: Any, shots: Path, tmp_path: Path
) -> None:
    history = whatif_bench.generate(tmp_path / "history", DAYS, PER_DAY, LISTINGS)
    report = tmp_path / "whatif.html"
    answer = run_cli(
        "whatif", "--config", "candidate.toml", "--since", "2000-01-01", "--out", str(report),
        cwd=history.root, timeout=300,
    )  # fmt: skip
    assert answer.exit_code == 0, answer.output

    browser.get(report.resolve().as_uri())
    browser.save_screenshot(str(shots / "whatif.png"))
    heading = browser.find_element(By.TAG_NAME, "h1").text
    assert "candidate.toml" in heading and "rules in force" in heading
    assert f"{DAYS * PER_DAY} runs replayed" in browser.find_element(By.TAG_NAME, "header").text
    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart")
    assert len(charts) >= 3
    for chart in charts:  # every chart draws both rule sets, with a size the eye can read
        svg = chart.find_element(By.TAG_NAME, "svg")
        assert svg.size["width"] > 200 and svg.size["height"] > 100, chart.text
        assert len(svg.find_elements(By.CSS_SELECTOR, "polyline, path, rect")) >= 2, chart.text
    tables = browser.find_elements(By.CSS_SELECTOR, "section.panel table")
    day_rows = [row for row in tables[1].find_elements(By.TAG_NAME, "tr") if row.text[:4].isdigit()]
    assert DAYS <= len(day_rows) <= DAYS + 1  # the window's days in the display zone
