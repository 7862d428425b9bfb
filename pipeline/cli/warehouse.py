"""``invsync warehouse rebuild``: move a damaged warehouse aside and build a new one from
the Parquet files beside it (docs/operations.md, "A damaged file").

Stage: repair, under the run lock. A thin wrapper over :func:`pipeline.warehouse.rebuild`:
reads the warehouse (to refuse a sound one), ``exports/`` and the snapshot and diff files;
writes ``warehouse.duckdb`` anew (the old one kept as ``warehouse.duckdb.damaged-<time>``)
and the analysts' views.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from pipeline.errors import UsageError

warehouse_app = typer.Typer(
    help="Repair the warehouse (warehouse.duckdb) from the Parquet files beside it.",
    no_args_is_help=True,
)


def _say(line: str) -> None:
    from pipeline.cli import console

    console.print(line, markup=False, highlight=False, soft_wrap=True)


@warehouse_app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even a warehouse that reads whole.")
    ] = False,
) -> None:
    """Move a damaged warehouse.duckdb aside and build a new one: migrations, the runs,
    push journal and listing tables from exports/, the views over every readable snapshot
    and diff. What only the old file held is named (docs/operations.md, "A damaged file")."""
    from pipeline import history_store, warehouse
    from pipeline.cli import state
    from pipeline.lock import run_lock

    ws = state(ctx).workspace()
    with run_lock(ws.data_dir, "warehouse rebuild"):
        if not force and not warehouse.is_damaged(ws.data_dir):
            raise UsageError(
                f"The warehouse {warehouse.warehouse_path(ws.data_dir)} opens and every table "
                "reads, so there is nothing to rebuild; add --force to rebuild it anyway "
                "(what only it holds is lost: docs/operations.md#a-damaged-file)."
            )
        done = warehouse.rebuild(
            ws.data_dir, now=datetime.now(UTC), history=history_store.store(ws)
        )
    if done.moved_to is not None:
        _say(f"Moved the old warehouse to {done.moved_to} (delete it once all is well).")
    as_of = f" as of {done.exported_at:%Y-%m-%d %H:%M} UTC" if done.exported_at else ""
    restored = ", ".join(f"{t} {n:,} rows" for t, n in done.restored.items()) or "nothing"
    _say(f"Built a new warehouse: restored {restored} from exports/{as_of}.")
    for table, why in done.not_restored.items():
        _say(f"Not restored: {table} ({why}).")
    if done.closed_runs:
        _say(
            f"Closed {done.closed_runs} unfinished runs as failed: their state was in the old file."
        )
    _say(
        f"The analysts' views read {done.snapshots} snapshots again. Lost with the old file: "
        "fetch plans, diff history and verdicts, review breakers and approvals, the BASE call "
        "windows and whatever changed since the export; `invsync sync` pulls the listings again."
    )
