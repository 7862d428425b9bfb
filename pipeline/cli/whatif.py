"""``invsync whatif --config candidate.toml``: replay a candidate configuration's pricing
and guardrail rules over the stored history beside the rules in force (docs/whatif.md).

Stage: a read-side report. A thin wrapper over :mod:`pipeline.whatif` and
:mod:`pipeline.whatif_report`: reads the snapshots, the listings as they stood and
``exports/runs/runs.parquet`` of the data directory, the configuration in force (the root
``--config``) and the candidate; writes only the HTML report (``--out``, default
``<data_dir>/reports/whatif-<time>.html``). Never opens the warehouse, never calls an API.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

FORMATS = ("table", "json")


def _out_path(data_dir: Path, now: datetime) -> Path:
    return data_dir / "reports" / f"whatif-{now:%Y%m%dT%H%M%SZ}.html"


def whatif_command(
    ctx: typer.Context,
    config: Annotated[
        Path,
        typer.Option(
            "--config", help="The candidate configuration: a whole invsync.toml to replay."
        ),
    ],
    since: Annotated[
        str, typer.Option("--since", help="How far back: 7d, 30d or a date (2026-11-01).")
    ] = "30d",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the HTML report (default data/reports/)."),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="What to print: table or json.")
    ] = "table",
) -> None:
    """Replay a candidate configuration's pricing and guardrail rules over every stored run
    since --since, beside the rules in force: changes, holds, API calls, listings left below
    cost and expected margin per day. Sends nothing and changes nothing stored."""
    from pipeline import whatif as replay_book
    from pipeline import whatif_report
    from pipeline.cli import state
    from pipeline.config import load_settings
    from pipeline.display import local
    from pipeline.errors import UsageError
    from pipeline.files import write_text_atomic
    from pipeline.workbench.render import render_page

    if output_format not in FORMATS:
        raise UsageError(f"--format {output_format!r} is not one of {', '.join(FORMATS)}.")
    ws = state(ctx).workspace()
    candidate = load_settings(config)
    now = datetime.now(UTC)
    zone = replay_book.display_zone(ws.settings)
    history = replay_book.find_history(ws.data_dir, replay_book.parse_since(since, now, zone))
    in_force_source = str(ws.config_path) if ws.config_path else "the built-in defaults"
    result = replay_book.replay(
        history,
        [
            replay_book.RuleSet(replay_book.IN_FORCE, ws.settings, in_force_source),
            replay_book.RuleSet("candidate", candidate, str(config)),
        ],
    )
    report = whatif_report.build(result, zone, now)
    target = (out or _out_path(ws.data_dir, now)).absolute()
    write_text_atomic(
        target,
        render_page(
            "whatif.html.j2",
            report=report,
            metrics=whatif_report.METRICS,
            colours=whatif_report.SERIES_COLOURS,
            in_force_source=in_force_source,
            candidate_source=str(config),
            since=local(report.since, report.zone),
            generated=local(now, report.zone),
        ),
    )
    if output_format == "json":
        print(json.dumps({**whatif_report.as_json(report), "report": str(target)}, indent=2))
        return
    _print_table(report)
    _say(f"Report: {target}")


def _say(line: str) -> None:
    from pipeline.cli import console

    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _print_table(report: object) -> None:
    from pipeline.cli import console
    from pipeline.display import local
    from pipeline.money import money
    from pipeline.whatif_report import METRICS, WhatifReport

    assert isinstance(report, WhatifReport)
    names = [name for name, _ in report.rule_sets]
    _say(
        f"What if: {report.rule_sets[-1][1]} beside the rules in force "
        f"({report.rule_sets[0][1]}), {report.runs} runs since "
        f"{local(report.since, report.zone)}; days in {report.zone} ({report.zone_label}); "
        "each cell is in force → candidate."
    )
    for why, n in report.skipped.items():
        _say(f"Not replayed: {n} run{'s' if n != 1 else ''} with {why}.")
    table = Table(show_lines=False)
    table.add_column(f"day ({report.zone_label})")
    table.add_column("runs", justify="right")
    for _, heading, _ in METRICS:
        table.add_column(heading, justify="right")
    for day in report.days:
        cells = [" → ".join(f"{day[key][n]:,}" for n in names) for key, _, _ in METRICS]
        table.add_row(day["day"].isoformat(), str(day["runs"]), *cells)
    console.print(table)
    margins = Table(title="Expected margin per account after the day's last run")
    margins.add_column(f"day ({report.zone_label})")
    margins.add_column("account")
    for name in names:
        margins.add_column(name, justify="right")
    for m in report.margins:
        margins.add_row(
            m["day"].isoformat(),
            m["account_id"],
            *(money(m["minor"][n], m["currency"]) for n in names),
        )
    console.print(margins)
