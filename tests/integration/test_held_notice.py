"""Held for review is a notice, not an error: `invsync sync` keeps exit 3 for schedulers
but says the held sentence once and never `Error:`; `invsync review`, which only shows,
exits 0; `make sync` succeeds with that one sentence. And every amount a person reads in
the summary, the review and the load plan carries its unit."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import _OUR_VARS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# 300 ASINs at 400× (a sync in seconds); a 5 % move limit so the demo surely holds rows
HELD_DEMO = "[sandbox]\nn_asins = 300\ntime_scale = 400\n[guardrails]\nmax_price_change_pct = 5\n"
HELD = re.compile(r"Run \S+ is held for review")

# A bare amount in minor units: two numbers of 3+ digits around an arrow, or an amount
# followed by a currency code instead of carrying its symbol (a rate "150 JPY/USD" is fine).
BARE_MOVE = re.compile(r"(?<![¥$\d.,])\d{3,}(?:[.,]\d+)*\s*→\s*\d{3,}")
BARE_CODE = re.compile(r"\d\s?(?:USD|JPY)\b(?!/)")
PRICE_WITHOUT_UNIT = re.compile(r"\bprice\s+\d")


def bare_amounts(text: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if BARE_MOVE.search(line) or BARE_CODE.search(line) or PRICE_WITHOUT_UNIT.search(line)
    ]


def test_the_scan_finds_bare_amounts() -> None:
    """The scanner itself: it flags what the terminal once printed, and passes money()."""
    assert bare_amounts("  s-1: 8856 → 13999 USD")
    assert bare_amounts("cost 1680 JPY")
    assert bare_amounts("    71000002: price 24050 → 24050, stock 5 → 0")
    assert not bare_amounts("    s-1: price $88.56 → $139.99, stock 5 → 0")
    assert not bare_amounts("  base: 426 listings → 264 to change; eBay priced at 150 JPY/USD")


def test_a_held_sync_says_it_once_and_review_only_shows(cli) -> None:
    Path("invsync.toml").write_text(HELD_DEMO)
    synced = cli("sync", "--dry-run", timeout=300)
    assert synced.exit_code == 3, synced.output  # schedulers still see "held"
    assert len(HELD.findall(synced.output)) == 1, synced.output
    assert "Error" not in synced.output
    (notice,) = [line for line in synced.stdout.splitlines() if HELD.search(line)]
    assert notice.startswith("Run ") and "invsync approve" in notice  # a line of its own
    assert "listings protected while held:" in synced.stdout

    reviewed = cli("review")
    assert reviewed.exit_code == 0, reviewed.output  # only looking is never an error
    assert len(HELD.findall(reviewed.output)) == 1 and "Error" not in reviewed.output
    assert re.search(r"move \S+ \(\w+\): [¥$][\d,.]+ → [¥$][\d,.]+", reviewed.stdout)

    planned = cli("load", "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert re.search(r"price ¥[\d,]+ → ¥[\d,]+", planned.stdout), planned.stdout
    assert re.search(r"price \$[\d,]+\.\d\d → \$[\d,]+\.\d\d", planned.stdout), planned.stdout

    for shown in (synced, reviewed, planned):
        assert bare_amounts(shown.output) == []


def test_make_sync_succeeds_with_one_held_notice(clean_environment: Path) -> None:
    (clean_environment / "invsync.toml").write_text(HELD_DEMO)
    env = {k: v for k, v in os.environ.items() if not _OUR_VARS.match(k)}
    env.update(
        INVSYNC_CONFIG=str(clean_environment / "invsync.toml"),
        INVSYNC_DATA_DIR=str(clean_environment / "data"),
        SYNC_ARGS="--dry-run",
    )
    env.pop("MAKEFLAGS", None)
    # -o: the checkout's .venv is the one running this test; never reinstall it from here
    made = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "-o", ".venv/.installed-stamp", "sync"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    output = made.stdout + made.stderr
    assert made.returncode == 0, output
    assert len(HELD.findall(output)) == 1, output
    assert "Error" not in output and "***" not in output
