"""The review workbench without a browser: the static page's content and escaping, CSV
formula neutralisation, and the server's token, Origin guard, decisions and breaker release
over real HTTP on 127.0.0.1 (the browser-driven flow is in test_workbench_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import requests

from pipeline.cli.render import plain
from pipeline.decisions import opened
from pipeline.review import price_history
from pipeline.workbench.exports import csv_safe
from pipeline.workbench.render import page_from_frames, render_review
from pipeline.workbench.server import COOKIE, TOKEN_HEADER
from tests.integration.workbench_kit import EVIL_TITLE, RUN, reviewed_run, served


def _static_page(data_dir: Path) -> str:
    ws, diffs, breakers = reviewed_run(data_dir)
    page = page_from_frames(
        RUN,
        diffs,
        {p: (tripped, reasons, False) for p, (tripped, reasons) in breakers.items()},
        {},
        price_history(ws.data_dir, diffs),
    )
    return render_review(page, interactive=False)


def _section(html: str, platform: str) -> str:
    return html.split(f'id="platform-{platform}"', 1)[1].split("</section>", 1)[0]


def test_static_page_lists_held_rows_first_and_escapes_titles_and_skus(data_dir: Path) -> None:
    html = _static_page(data_dir)

    assert "<script" not in html  # no script of ours, and the title's is escaped
    assert "script-src 'none'" in html
    assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt; Tea &amp; cups" in html
    assert EVIL_TITLE not in html
    assert "<code>S-[bold]1</code>" in html  # rich markup means nothing in HTML: shown as is
    assert "Cast iron kettle [bold]1.2 L[/bold]" in html
    assert "<button" not in html and "http://" not in html  # static: no controls, no requests

    base = _section(html, "base")
    listings = re.findall(
        r'<tr class="row[^"]*" [^>]*data-listing="([^"]+)" data-held="(\w+)"', base
    )
    assert [held for _, held in listings] == ["true"] * 3 + ["false"] * 4
    assert {key for key, held in listings if held == "true"} == {"1", "2", "5"}
    # the hooks test_review_browser.py reads stay in place
    assert f"Review of run <code>{RUN}</code>" in html
    counts = dict(re.findall(r'<td data-kind="([a-z_]+)">(\d+)</td>', base))
    assert counts == {
        "price_up": "6", "price_down": "0", "out_of_stock": "1", "restock": "0",
        "total": "7", "held": "3",
    }  # fmt: skip
    assert base.count("<polyline") == 6  # every ASIN but the out-of-stock one has a price

    first = base.split('data-listing="1"', 1)[1].split("</tr>", 1)[0]
    assert "¥500 → ¥1,400" in first and "¥1,000" in first and "21.9 % · ¥307" in first
    assert re.search(r"-¥[\d,]+", first) and "below cost now" in first
    assert "price_move_over_limit" in first and "while held: raise (loss at current price)" in first
    assert 'href="https://www.amazon.co.jp/dp/B000000001"' in first
    assert re.search(r"\d+ min", first) and " JST" in first  # [display] timezone, named
    assert "raised while held" in first  # its protective raise already went out
    ebay = _section(html, "ebay")
    assert "$9.00 → $29.99" in ebay and "Breaker: not tripped." in ebay
    plan = html.split('id="plan"', 1)[1].split("</aside>", 1)[0]
    # BASE: 4 rows not held + 3 held rows' protective raises; eBay: 1 not held, and S-2
    # ($9.00, under its cost) is raised while it waits
    assert 'data-platform="base" data-sends="7"' in plan
    assert 'data-platform="ebay" data-sends="2"' in plan


def test_plain_escapes_rich_markup_for_the_terminal() -> None:
    from rich.console import Console

    console = Console(width=80, record=True, color_system=None)
    console.print(f"held {plain('S-[bold]1')}: {plain('[red]Kettle[/red]')}")
    assert console.export_text().strip() == "held S-[bold]1: [red]Kettle[/red]"


def test_csv_safe_neutralises_formula_cells_and_leaves_numbers() -> None:
    frame = pl.DataFrame(
        {
            "title": ['=HYPERLINK("http://x.example","click")', "+1", "-2+3", "@SUM(A1)", "Tea"],
            "sku": ["\tTAB", "\rCR", "A=1", "", None],
            "price_minor": [-120, 1, -2, 3, 4],
            "held": [True, False, True, False, True],
        }
    )
    safe = csv_safe(frame)
    assert safe["title"].to_list() == [
        "'=HYPERLINK(\"http://x.example\",\"click\")", "'+1", "'-2+3", "'@SUM(A1)", "Tea",
    ]  # fmt: skip
    assert safe["sku"].to_list() == ["'\tTAB", "'\rCR", "A=1", "", None]
    assert safe["price_minor"].to_list() == [-120, 1, -2, 3, 4]  # numbers stay numbers
    assert safe.schema == frame.schema
    text = safe.write_csv()
    assert "'=HYPERLINK" in text and ",-120,true\n" in text


# --- the server over HTTP -------------------------------------------------------------------


@pytest.fixture
def workbench(data_dir: Path) -> Iterator[dict[str, Any]]:
    """The run served by ``serve`` in a thread, as ``invsync review --serve`` will; eBay's
    breaker is passed as tripped to exercise its release."""
    ws, diffs, breakers = reviewed_run(data_dir)
    breakers["ebay"] = (True, ["Amazon calls 2 of 2 eBay listings out of stock"])
    with served(ws, diffs, breakers) as url:
        origin = url.split("/?", 1)[0]
        token = url.split("token=", 1)[1]
        yield {"url": url, "origin": origin, "token": token, "diffs": diffs, "data_dir": data_dir}


def _post(bench: dict[str, Any], path: str, body: Any, **headers: str) -> requests.Response:
    sent = {TOKEN_HEADER: bench["token"], "Origin": bench["origin"], **headers}
    return requests.post(bench["origin"] + path, json=body, headers=sent, timeout=30)


def _ids(bench: dict[str, Any], platform: str, **where: Any) -> list[str]:
    frame = bench["diffs"][platform]
    for column, value in where.items():
        frame = frame.filter(pl.col(column) == value)
    return frame.sort("listing_key")["change_id"].to_list()


def test_the_server_wants_its_token_and_refuses_cross_origin_posts(workbench) -> None:
    origin, token = workbench["origin"], workbench["token"]
    assert origin.startswith("http://127.0.0.1:")
    for path in ("/", "/plan", "/?token=wrong"):
        refused = requests.get(origin + path, timeout=30, allow_redirects=False)
        assert refused.status_code == 403, path
        assert "token" in refused.json()["error"]

    # the URL's token is traded for a cookie, and the page then loads without it in the URL
    session = requests.Session()
    first = session.get(workbench["url"], timeout=30, allow_redirects=False)
    assert first.status_code == 303 and first.headers["Location"] == "/"
    assert (
        "HttpOnly" in first.headers["Set-Cookie"]
        and "SameSite=Strict" in first.headers["Set-Cookie"]
    )
    page = session.get(origin + "/", timeout=30)
    assert page.status_code == 200 and session.cookies.get(COOKIE) == token
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert 'class="sort"' in page.text and "Approve all held on eBay" in page.text

    one = _ids(workbench, "base", listing_key="3")
    body = {"change_ids": one, "decision": "approve"}
    cross = _post(workbench, "/decide", body, Origin="http://evil.example")
    assert cross.status_code == 403 and "another site" in cross.json()["error"]
    assert _post(workbench, "/decide", body, Origin="null").status_code == 403
    no_origin = requests.post(
        origin + "/decide", json=body, headers={TOKEN_HEADER: token}, timeout=30
    )
    assert no_origin.status_code == 403
    cookie_only = session.post(
        origin + "/decide", json=body, headers={"Origin": origin}, timeout=30
    )
    assert cookie_only.status_code == 403  # the cookie alone never carries a decision
    rebound = _post(workbench, "/decide", body, Host="attacker.example")
    assert rebound.status_code == 403
    form = requests.post(
        origin + "/decide", data="change_ids=x", timeout=30,
        headers={TOKEN_HEADER: token, "Origin": origin,
                 "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert form.status_code == 400
    with _store(workbench) as store:
        assert store.all() == []

    unknown = _post(workbench, "/decide", {"change_ids": ["nope"], "decision": "approve"})
    assert unknown.status_code == 400
    assert unknown.json()["error"].startswith("Change 'nope' is not in run ")
    bad = _post(workbench, "/decide", {"change_ids": one, "decision": "ship"})
    assert bad.status_code == 400 and "approve, reject, hold" in bad.json()["error"]

    ok = _post(workbench, "/decide", body)
    assert ok.status_code == 200, ok.text
    assert ok.json()["recorded"] == 1 and ok.json()["decisions"] == {one[0]: "approve"}
    with _store(workbench) as store:
        assert [(d.change_id, d.decision, d.decided_by) for d in store.all()] == [
            (one[0], "approve", "workbench")
        ]


def test_release_approves_held_rows_but_not_rejected_ones_and_releases_the_breaker(
    workbench,
) -> None:
    plan = requests.get(
        workbench["origin"] + "/plan", headers={TOKEN_HEADER: workbench["token"]}, timeout=30
    ).json()
    assert plan["platforms"]["ebay"]["holds_load"] is True
    # a tripped breaker lets out nothing but the protections of listings losing money
    ebay = plan["platforms"]["ebay"]
    assert ebay["changes"] == 0 and ebay["sends"] == ebay["raises"] + ebay["pauses"]

    held_base = _ids(workbench, "base", held=True)  # items 1, 2, 5
    rejected = _post(workbench, "/decide", {"change_ids": held_base[:1], "decision": "reject"})
    assert rejected.status_code == 200
    released = _post(workbench, "/release", {"platform": "base"})
    assert released.status_code == 200, released.text
    assert released.json()["recorded"] == 2 and released.json()["breaker_released"] is False
    with _store(workbench) as store:
        assert store.decisions(held_base) == {
            held_base[0]: "reject", held_base[1]: "approve", held_base[2]: "approve"
        }  # fmt: skip
        assert not store.breaker_released(RUN, "base")  # not tripped: nothing to release

    ebay = _post(workbench, "/release", {"platform": "ebay"})
    assert ebay.status_code == 200 and ebay.json()["breaker_released"] is True
    after = ebay.json()["plan"]["platforms"]["ebay"]
    assert after["holds_load"] is False and after["sends"] == 2 and after["waiting"] == 0
    assert {r["listing_key"] for r in after["rows"]} == {"S-2", "S-[bold]1"}
    with _store(workbench) as store:
        assert store.breaker_released(RUN, "ebay")
    wrong = _post(workbench, "/release", {"platform": "amazon"})
    assert wrong.status_code == 400 and "pick one of base, ebay" in wrong.json()["error"]


def _store(bench: dict[str, Any]) -> Any:
    return opened(bench["data_dir"])
