"""The review workbench in headless Chromium, driven through chromedriver with selenium:
a person filters to one account, approves two rows and rejects one by clicking, and the
decisions store and ``/plan`` say exactly that; the page reads as cards at phone width; the
static page runs no script a title smuggles in. Screenshots at 1,400 and 400 px go to a folder
the run's summary prints.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``); ``make test`` runs these tests when both are installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
import requests

from pipeline.decisions import opened
from pipeline.review import price_history
from pipeline.workbench.render import page_from_frames, render_review
from pipeline.workbench.server import TOKEN_HEADER
from tests.integration.workbench_kit import EVIL_TITLE, RUN, reviewed_run, served

pytestmark = pytest.mark.browser
INSTALL = "apt-get install -y chromium chromium-driver"
WAIT_SECONDS = 30


def _width(browser: Any, width: int) -> None:
    """Lay the page out ``width`` CSS px wide (a phone below 600), tall enough for a
    screenshot of the whole page, scrolled to its top."""
    browser.execute_script("window.scrollTo(0, 0)")
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": min(int(height), 6000), "deviceScaleFactor": 1,
         "mobile": width < 600},
    )  # fmt: skip


def _wait(browser: Any, condition: Any, what: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, WAIT_SECONDS).until(condition, message=f"waited for {what}")


def _row(browser: Any, change_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f'tr.row[data-change-id="{change_id}"]')


def _reads_as_cards(browser: Any) -> None:
    """At phone width every cell of every shown row is on screen, side by side at most two
    to a line, and nothing scrolls sideways."""
    layout = browser.execute_script(
        """
        const rows = Array.from(document.querySelectorAll('tr.row')).filter(r => !r.hidden);
        return {
          inner: window.innerWidth,
          scroll: document.documentElement.scrollWidth,
          rows: rows.map(r => Array.from(r.cells).map(c => {
            const b = c.getBoundingClientRect();
            return [c.dataset.label, Math.round(b.left), Math.round(b.right), Math.round(b.top),
                    Math.round(b.height), getComputedStyle(c).display];
          })),
        };"""
    )
    assert layout["inner"] == 400
    assert layout["scroll"] <= 400, f"the page scrolls sideways at 400 px: {layout['scroll']}"
    assert layout["rows"]
    for cells in layout["rows"]:
        assert len(cells) >= 11
        for label, left, right, _top, height, display in cells:
            assert display != "none" and height > 0, f"{label} is hidden at 400 px"
            assert left >= 0 and right <= 400, f"{label} is off screen at 400 px ({left}–{right})"
        lines: dict[int, int] = {}
        for _, _, _, top, _, _ in cells:
            lines[top] = lines.get(top, 0) + 1
        assert max(lines.values()) <= 2, f"a row is laid out as a table line at 400 px: {cells}"


def test_filter_approve_two_reject_one_through_the_page(
    data_dir: Path, browser: Any, shots: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    ws, diffs, breakers = reviewed_run(data_dir)
    base = diffs["base"]

    def change_id(key: str) -> str:
        return base.filter(pl.col("listing_key") == key)["change_id"].item()

    approve_one, approve_two, reject = change_id("1"), change_id("2"), change_id("3")
    with served(ws, diffs, breakers) as url:
        origin = url.split("/?", 1)[0]
        browser.get(url)
        assert browser.current_url == origin + "/"  # the token left the address bar
        _wait(browser, lambda b: "of 9 rows shown" in b.find_element(By.ID, "shown").text, "rows")

        Select(browser.find_element(By.ID, "f-account")).select_by_value("shop1")
        shown = [r for r in browser.find_elements(By.CSS_SELECTOR, "tr.row") if r.is_displayed()]
        assert {r.get_attribute("data-account") for r in shown} == {"shop1"}
        assert len(shown) == 4
        assert browser.find_element(By.ID, "shown").text == "4 of 9 rows shown"
        assert not browser.find_element(By.ID, "platform-ebay").is_displayed()

        _row(browser, approve_one).find_element(By.CSS_SELECTOR, "button.approve").click()
        _wait(browser, lambda b: _row(b, approve_one).get_attribute("data-decision") == "approve",
              "the first approval")  # fmt: skip
        _row(browser, approve_two).find_element(By.CSS_SELECTOR, "input.pick").click()
        assert browser.find_element(By.ID, "picked").text == "1 selected"
        browser.find_element(By.ID, "approve-selected").click()
        _wait(browser, lambda b: _row(b, approve_two).get_attribute("data-decision") == "approve",
              "the approval of the selection")  # fmt: skip
        _row(browser, reject).find_element(By.CSS_SELECTOR, "button.reject").click()
        _wait(browser, lambda b: _row(b, reject).get_attribute("data-decision") == "reject",
              "the rejection")  # fmt: skip
        assert _row(browser, reject).find_element(By.CSS_SELECTOR, ".state").text == "rejected"
        assert "Recorded reject for 1 row(s)" in browser.find_element(By.ID, "status").text

        with opened(data_dir) as store:
            decided = {(d.change_id, d.decision, d.decided_by, d.run_id) for d in store.all()}
        assert decided == {
            (approve_one, "approve", "workbench", RUN),
            (approve_two, "approve", "workbench", RUN),
            (reject, "reject", "workbench", RUN),
        }

        plan = requests.get(origin + "/plan", headers={TOKEN_HEADER: url.split("token=")[1]},
                            timeout=30).json()  # fmt: skip
        going = {r["change_id"]: r for r in plan["platforms"]["base"]["rows"]}
        assert going[approve_one]["why"] == going[approve_two]["why"] == "approved"
        assert going[approve_one]["action"] == going[approve_two]["action"] == "change"
        assert reject not in going
        # the page's panel shows the same plan as /plan: BASE 3 unheld + 2 approved + 1 raise
        panel = browser.find_element(By.CSS_SELECTOR, '#plan-platforms li[data-platform="base"]')
        assert panel.get_attribute("data-sends") == str(plan["platforms"]["base"]["sends"]) == "6"

        # sort by title within the groups; the held group stays first
        browser.find_element(
            By.CSS_SELECTOR, '#platform-base button.sort[data-key="title"]'
        ).click()
        keys = [r.get_attribute("data-listing") for r in
                browser.find_elements(By.CSS_SELECTOR, "#platform-base tr.row") if r.is_displayed()]  # fmt: skip
        assert keys == ["1", "2", "4", "3"]  # held: "<script…" < "kyusu…"; then "4" < "bamboo…"

        Select(browser.find_element(By.ID, "f-account")).select_by_value("")
        browser.find_element(By.ID, "f-q").send_keys("kettle")
        _wait(browser, lambda b: b.find_element(By.ID, "shown").text == "1 of 9 rows shown",
              "the search")  # fmt: skip
        browser.find_element(By.ID, "f-q").clear()
        browser.find_element(By.ID, "f-q").send_keys(" ")  # clear() fires no input event
        _wait(browser, lambda b: b.find_element(By.ID, "shown").text == "9 of 9 rows shown",
              "the cleared search")  # fmt: skip

        _width(browser, 1400)
        browser.save_screenshot(str(shots / "workbench-1400.png"))
        _width(browser, 400)
        _reads_as_cards(browser)
        browser.save_screenshot(str(shots / "workbench-400.png"))
    assert (shots / "workbench-1400.png").stat().st_size > 10_000


def test_static_page_runs_no_smuggled_script_and_reads_at_phone_width(
    data_dir: Path, browser: Any, shots: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    ws, diffs, breakers = reviewed_run(data_dir)
    page = page_from_frames(
        RUN,
        diffs,
        {p: (tripped, reasons, False) for p, (tripped, reasons) in breakers.items()},
        {},
        price_history(ws.data_dir, diffs),
    )
    report = tmp_path / "review.html"
    report.write_text(render_review(page, interactive=False), encoding="utf-8")

    browser.get(report.as_uri())
    assert browser.title == f"invsync review — run {RUN}"  # the title's script did not run
    first = browser.find_element(By.CSS_SELECTOR, '#platform-base tr.row[data-listing="1"]')
    assert first.find_element(By.CSS_SELECTOR, ".title").text == EVIL_TITLE
    ebay = browser.find_element(By.CSS_SELECTOR, '#platform-ebay tr.row[data-listing="S-[bold]1"]')
    assert "S-[bold]1" in ebay.text
    assert not browser.find_elements(By.TAG_NAME, "button")
    _width(browser, 1400)
    browser.save_screenshot(str(shots / "static-1400.png"))
    _width(browser, 400)
    _reads_as_cards(browser)
    browser.save_screenshot(str(shots / "static-400.png"))
