"""Times for people: stored UTC shown in the `[display] timezone` with the zone named, in the
one helper and in every text built from it (the sync summary, the terminal's log lines,
`listings show`, the alerts); a zone name nobody knows is a configuration error."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from pipeline import display
from pipeline.cli import render
from pipeline.cli.listings import show_lines
from pipeline.config import DisplaySettings, Settings, parse_settings
from pipeline.errors import ConfigError
from pipeline.logs import JsonLinesFormatter, TerminalFormatter
from pipeline.notify import alert_for, alert_for_error
from pipeline.sync import SyncSummary

# 11:26:12 UTC on 30 November is 20:26:12 in Tokyo (UTC+9, no summer time)
INSTANT = datetime(2026, 11, 30, 11, 26, 12, tzinfo=UTC)
RUN = "20261130T112612Z-a1b2c3"


def test_a_fixed_utc_instant_renders_as_its_wall_time_with_the_zone_named() -> None:
    assert display.local(INSTANT, "Asia/Tokyo") == "2026-11-30 20:26 JST"
    assert display.local(INSTANT, "Asia/Tokyo", seconds=True) == "2026-11-30 20:26:12 JST"
    assert display.local(INSTANT, "UTC") == "2026-11-30 11:26 UTC"
    assert display.short(INSTANT, "Asia/Tokyo") == "11-30 20:26 JST"
    assert display.clock(INSTANT, "Asia/Tokyo") == "20:26:12 JST"
    assert display.clock(INSTANT, "UTC") == "11:26:12 UTC"
    # the date turns with the zone: 20:00 UTC is the next morning in Tokyo
    assert display.local(datetime(2026, 11, 30, 20, 0, tzinfo=UTC), "Asia/Tokyo") == (
        "2026-12-01 05:00 JST"
    )
    # a naive time is read as UTC, the zone everything is stored in
    assert display.local(INSTANT.replace(tzinfo=None), "Asia/Tokyo") == "2026-11-30 20:26 JST"
    assert display.local(None, "Asia/Tokyo") == "–"


def test_zones_with_summer_time_or_no_letters_are_named_by_what_applies_then() -> None:
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert display.local(summer, "Europe/Berlin") == "2026-07-01 14:00 CEST"
    assert display.local(INSTANT, "Europe/Berlin") == "2026-11-30 12:26 CET"
    assert display.local(INSTANT, "Asia/Dubai") == "2026-11-30 15:26 UTC+04"
    assert display.zone_note("Asia/Tokyo", INSTANT) == "times in JST (Asia/Tokyo)"
    assert display.zone_note("UTC", INSTANT) == "times in UTC"


def test_a_run_id_gives_its_utc_start() -> None:
    assert display.run_started(RUN) == INSTANT
    assert display.run_started("r1") is None


def test_display_timezone_defaults_to_tokyo_and_takes_any_iana_name() -> None:
    assert Settings().display.timezone == "Asia/Tokyo"
    chosen = parse_settings({"display": {"timezone": "America/Los_Angeles"}})
    assert chosen.display.timezone == "America/Los_Angeles"
    # the display zone changes no decision, so it leaves the run's config hash alone
    assert chosen.digest() == Settings().digest()


@pytest.mark.parametrize("name", ["Asia/Tokio", "JST", "Asia", "", "/etc/localtime", "../UTC"])
def test_a_zone_name_nobody_knows_is_a_config_error_naming_it(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"display": {"timezone": name}}, "invsync.toml")
    assert caught.value.exit_code == 2
    assert caught.value.message == (
        f"invsync.toml: key 'display.timezone' is malformed: {name!r} is not an IANA time "
        "zone name such as 'Asia/Tokyo' or 'UTC'; see docs/configuration.md for the accepted keys."
    )
    assert DisplaySettings(timezone="UTC").timezone == "UTC"


def _record(message: str) -> logging.LogRecord:
    record = logging.LogRecord("invsync.load", logging.INFO, __file__, 1, message, None, None)
    record.created = INSTANT.timestamp()
    return record


def test_terminal_log_lines_say_their_zone_and_the_json_log_stays_utc() -> None:
    line = "eBay account ebay-main: 3 ok"
    assert TerminalFormatter().format(_record(line)) == f"20:26:12 JST {line}"
    assert TerminalFormatter("UTC").format(_record(line)) == f"11:26:12 UTC {line}"
    entry = json.loads(JsonLinesFormatter().format(_record(line)))
    assert entry["ts"] == "2026-11-30T11:26:12.000+00:00"  # machines read UTC with its offset


def test_the_sync_summary_names_the_start_in_the_display_zone() -> None:
    summary = SyncSummary(run_id=RUN, mode="sandbox", outcome="ok")
    tokyo = render.sync_summary_lines(summary, "Asia/Tokyo")
    assert tokyo[1] == "  started           2026-11-30 20:26:12 JST (the run id's time is UTC)"
    utc = render.sync_summary_lines(summary, "UTC")
    assert utc[1] == "  started           2026-11-30 11:26:12 UTC (the run id's time is UTC)"


def test_listings_show_says_since_when_in_the_display_zone() -> None:
    rows = [
        ("gone", "base", "shop1", "42", "B000000001", "Tea", "no longer listed", INSTANT),
        ("drifted", "ebay", "ebay-main", "S-1", "B000000002", "Cup", "changed by hand", None),
    ]
    lines = show_lines(rows, ["gone", "drifted"], "Asia/Tokyo")
    assert lines[0] == "2 listing(s): 1 gone, 1 drifted."
    assert "since 2026-11-30 20:26 JST  no longer listed" in lines[1]
    assert "since –" in lines[2]
    assert "since 2026-11-30 11:26 UTC" in show_lines(rows, ["gone"], "UTC")[1]


def test_alerts_name_the_runs_start_in_the_display_zone() -> None:
    summary = SyncSummary(run_id=RUN, mode="sandbox", outcome="held")
    alert = alert_for(summary, "Asia/Tokyo")
    assert alert is not None
    assert alert.body.splitlines()[:2] == [
        f"Run {RUN} (sandbox) is held for review.",
        "Started: 2026-11-30 20:26 JST",
    ]
    failed = alert_for_error(RuntimeError("boom"), RUN, "UTC")
    assert "Started: 2026-11-30 11:26 UTC" in failed.body.splitlines()
