"""Every time a seller reads names its zone: a real demo sync's summary, terminal log lines,
`invsync review` and review.html in JST by default, the review page in whatever
`[display] timezone` says, and the JSON-lines log in UTC for machines."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipeline.workbench.render import page_from_frames, render_review
from pipeline.workbench.server import Workbench
from tests.integration.test_sync import SMALL_DEMO
from tests.integration.workbench_kit import RUN, reviewed_run

FETCHED = datetime(2026, 11, 30, 11, 26, 12, tzinfo=UTC)  # 20:26:12 in Tokyo
GENERATED = FETCHED + timedelta(hours=1)
TOKYO = timedelta(hours=9)  # Asia/Tokyo keeps no summer time
CLOCK = re.compile(r"^(\d\d):(\d\d):(\d\d) JST ")


def _fixed_fetch_times(data_dir: Path):
    ws, diffs, breakers = reviewed_run(data_dir)
    fixed = {
        p: d.with_columns(pl.lit(FETCHED).alias("source_fetched_at")) for p, d in diffs.items()
    }
    return ws, fixed, {p: (tripped, reasons, False) for p, (tripped, reasons) in breakers.items()}


def test_the_review_page_shows_its_times_in_the_display_zone(data_dir: Path) -> None:
    _, diffs, breakers = _fixed_fetch_times(data_dir)
    page = page_from_frames(
        RUN, diffs, breakers, {}, {}, generated_at=GENERATED, timezone="Asia/Tokyo"
    )
    html = render_review(page, interactive=False)
    assert "Generated 2026-11-30 21:26 JST; every time on this page is in JST (Asia/Tokyo)." in html
    assert 'title="fetched 2026-11-30 20:26:12 JST">11-30 20:26 JST</div>' in html
    assert "UTC" not in html

    in_utc = page_from_frames(RUN, diffs, breakers, {}, {}, generated_at=GENERATED, timezone="UTC")
    html = render_review(in_utc, interactive=False)
    assert "Generated 2026-11-30 12:26 UTC; every time on this page is in UTC." in html
    assert 'title="fetched 2026-11-30 11:26:12 UTC">11-30 11:26 UTC</div>' in html
    assert "JST" not in html


def test_the_workbench_page_shows_its_times_in_the_zone_it_was_given(data_dir: Path) -> None:
    _, diffs, breakers = _fixed_fetch_times(data_dir)
    bench = Workbench(data_dir, RUN, diffs=diffs, breakers=breakers, history={}, timezone="UTC")
    html = bench.page()
    assert "every time on this page is in UTC." in html
    assert ">11-30 11:26 UTC</div>" in html and "JST" not in html


def test_a_display_zone_nobody_knows_stops_every_command_with_exit_2(cli) -> None:
    Path("invsync.toml").write_text('[display]\ntimezone = "Asia/Tokio"\n')
    for command in (("config", "check"), ("runs",), ("sync",)):
        result = cli(*command)
        assert result.exit_code == 2, result.output
        assert (
            "invsync.toml: key 'display.timezone' is malformed: 'Asia/Tokio' is not an IANA "
            "time zone name such as 'Asia/Tokyo' or 'UTC'" in result.stderr
        )
    assert not Path("data/warehouse.duckdb").exists()  # nothing started


def _jst(moment: datetime) -> datetime:
    return (moment.astimezone(UTC) + TOKYO).replace(tzinfo=None)


@pytest.mark.slow
def test_a_demo_sync_says_jst_everywhere_a_person_reads_and_utc_in_the_json_log(cli) -> None:
    Path("invsync.toml").write_text(SMALL_DEMO + "time_scale = 400\n")
    before = datetime.now(UTC).replace(microsecond=0)
    synced = cli("sync", timeout=300)
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert synced.exit_code in (0, 3), synced.output
    run_id = next(line.split()[1] for line in synced.stdout.splitlines() if line.startswith("Run "))
    started = datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ")  # UTC, naive
    wall = started + TOKYO
    assert (
        f"  started           {wall:%Y-%m-%d %H:%M:%S} JST (the run id's time is UTC)"
        in synced.stdout.splitlines()
    )

    # the terminal's log lines: each with its time of day in Tokyo, named
    logged = [line for line in synced.stderr.splitlines() if line.strip()]
    assert logged, "a demo sync logs to the terminal"
    seconds = {
        (_jst(before) + timedelta(seconds=s)).time()
        for s in range(int((after - before).total_seconds()) + 1)
    }
    for line in logged:
        match = CLOCK.match(line)
        assert match, f"log line without its JST time: {line!r}"
        clock = datetime.strptime(":".join(match.groups()), "%H:%M:%S").time()
        assert clock in seconds, f"{line!r} is not between the sync's start and end in JST"

    # the machines' log keeps UTC with its offset
    entries = [json.loads(x) for x in Path("data/logs/invsync.jsonl").read_text().splitlines()]
    assert entries and all(e["ts"].endswith("+00:00") for e in entries)

    html = (Path("data") / "reviews" / run_id / "review.html").read_text(encoding="utf-8")
    assert "every time on this page is in JST (Asia/Tokyo)." in html
    review = cli("review", "--run", run_id)
    assert review.exit_code == 0, review.output
    assert review.stdout.splitlines()[0] == (
        f"Review of run {run_id} (started {wall:%Y-%m-%d %H:%M} JST):"
    )
