"""review.html opens in headless Chromium and shows the run's counts (`make test` runs it
when Debian's `chromium` and `chromium-driver` are installed: `apt-get install -y chromium
chromium-driver`). The workbench template keeps the hooks read here (the run heading, the
`platform-<p>` section, the `data-kind` counts, one sparkline per priced row), as
test_workbench.py checks, so this test holds when `invsync review` renders through it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.config import open_workspace
from pipeline.review import run as review_run
from pipeline.transform import run as transform_run
from pipeline.warehouse import opened
from tests.sql.frames import asin, observation, seed_run

RUN = "20250601T000000Z-b0b0b0"


@pytest.mark.browser
def test_review_html_renders_the_counts_in_chromium(data_dir: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "The browser tests need Chromium: apt-get install -y chromium chromium-driver"
    base = [
        {"account_id": "shop1", "item_id": n, "asin": asin(n), "price_jpy": 1300, "stock": 1}
        for n in range(1, 5)
    ]
    snapshot = [observation(asin(1), "no_offer")]
    snapshot += [observation(asin(n), price_jpy=1000) for n in range(2, 5)]
    seed_run(data_dir, RUN, base=base, snapshot=snapshot, unique_asins=4)
    ws = open_workspace(data_dir=data_dir, environ={})
    with opened(data_dir) as con:
        transform_run(ws, con, RUN)
        report = review_run(ws, con, RUN).report

    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            f"--user-data-dir={tmp_path / 'profile'}",
            report.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert f"Review of run <code>{RUN}</code>" in dom
    assert "every time on this page is in JST (Asia/Tokyo)." in dom  # [display] timezone
    base_section = dom.split('id="platform-base"', 1)[1].split("</section>", 1)[0]
    counts = dict(re.findall(r'<td data-kind="([a-z_]+)">(\d+)</td>', base_section))
    assert counts == {
        "price_up": "3",
        "price_down": "0",
        "out_of_stock": "1",
        "restock": "0",
        "total": "4",
        "held": "0",
    }
    assert base_section.count("<polyline") == 3  # items 2–4 have an Amazon price
