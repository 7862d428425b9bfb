"""``invsync listings show``: the listings that left the sync, or changed by hand, by id.

Stage: listings (read-only). Reads ``listings_base``, ``listings_ebay`` and
``listings_unmapped`` (migration 052) through ``sql/pull/show_listings.sql``; writes nothing.
The listings pull names the counts and this command (``pipeline.listings_pull``); this lists
them: gone (no longer on the platform), unmapped (returned, but no ASIN or no usable price
or stock: the reason), drifted (changed by hand; review holds them) and, asked for with
``--unlisted``, the ones hidden by hand, each with since when (in the ``[display] timezone``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pipeline.display import local
from pipeline.errors import DataError, UsageError
from pipeline.platforms import PLATFORMS

DEFAULT_KINDS = ("gone", "unmapped", "drifted")
_TITLE_WIDTH = 40


def chosen_kinds(gone: bool, unmapped: bool, drifted: bool, unlisted: bool) -> list[str]:
    """The kinds asked for; none asked: gone, unmapped and drifted."""
    asked = [
        kind
        for kind, wanted in (
            ("gone", gone), ("unmapped", unmapped), ("drifted", drifted), ("unlisted", unlisted)
        )
        if wanted
    ]  # fmt: skip
    return asked or list(DEFAULT_KINDS)


def printable(text: Any, width: int | None = None) -> str:
    """A platform's text (a title, a SKU) on one line: control characters as spaces, cut to
    ``width`` with an ellipsis."""
    value = "".join(c if c.isprintable() else " " for c in ("" if text is None else str(text)))
    if width is not None and len(value) > width:
        value = value[: width - 1] + "…"
    return value


def show_lines(rows: list[tuple[Any, ...]], kinds: list[str], timezone: str) -> list[str]:
    """The count per kind, then one aligned line per listing, since when in ``timezone``
    (``[display] timezone``) with the zone named."""
    counts = {kind: sum(1 for r in rows if r[0] == kind) for kind in kinds}
    head = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    lines = [f"{len(rows)} listing(s): {head}."]
    table = [
        [printable(kind), platform, printable(account), printable(key), printable(asin),
         f"since {local(since, timezone)}", printable(detail), printable(title, _TITLE_WIDTH)]
        for kind, platform, account, key, asin, title, detail, since in rows
    ]  # fmt: skip
    if table:
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
        for row in table:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def listings_show(
    ctx: typer.Context,
    gone: Annotated[
        bool, typer.Option("--gone", help="Listings no longer on the platform.")
    ] = False,
    unmapped: Annotated[
        bool, typer.Option("--unmapped", help="Listings with no ASIN or no usable price/stock.")
    ] = False,
    drifted: Annotated[bool, typer.Option("--drifted", help="Listings changed by hand.")] = False,
    unlisted: Annotated[
        bool, typer.Option("--unlisted", help="Listings hidden or withdrawn by hand.")
    ] = False,
    platform: Annotated[str | None, typer.Option("--platform", help="base or ebay.")] = None,
    account: Annotated[str | None, typer.Option("--account", help="One account only.")] = None,
) -> None:
    """List the listings that left the sync (gone, unmapped) or changed by hand (drifted)."""
    from pipeline.cli import _say_all, state
    from pipeline.sql import run_sql
    from pipeline.warehouse import opened

    if platform is not None and platform not in PLATFORMS:
        raise UsageError(f"--platform must be base or ebay, not {platform!r}.")
    ws = state(ctx).workspace()
    if account is not None:
        ws.settings.account(account)  # an unknown account is a sentence, not an empty list
    kinds = chosen_kinds(gone, unmapped, drifted, unlisted)
    with opened(ws.data_dir, read_only=True) as con:  # looking never needs write access
        if not con.execute(
            "select count(*) from duckdb_tables() where table_name = 'listings_unmapped'"
        ).fetchone()[0]:  # type: ignore[index]
            raise DataError(
                f"The warehouse in {ws.data_dir} predates the pull's reports; run "
                "`invsync listings pull` once, then `invsync listings show` again."
            )
        rows = run_sql(
            con,
            "pull/show_listings",
            {"kinds": kinds, "platform": platform, "account": account},
        ).fetchall()
    _say_all(show_lines(rows, kinds, ws.settings.display.timezone))
