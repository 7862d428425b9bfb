"""CSV exports a person opens in a spreadsheet, with formula cells neutralised.

Stage: review. Pure: frame in, frame out. A listing title or SKU comes from a platform and
may be written by anyone; a spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or
``@`` (and, in some, after a leading tab or carriage return) as a formula, e.g.
``=HYPERLINK("http://…", "click")``. Following OWASP's CSV injection guidance, every text
cell that starts with one of those characters gets a leading ``'`` so it shows as text.
Numeric, boolean and date columns are left as they are: they are not text and a number such
as ``-120`` must stay a number. The diff's own text columns (ids, statuses, reasons) never
start with those characters, so for them the export is unchanged.
"""

from __future__ import annotations

import polars as pl

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PATTERN = "^[=+\\-@\t\r]"


def csv_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every text cell that a spreadsheet would run as a formula prefixed by
    ``'``; other columns untouched."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not text:
        return frame
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(_PATTERN))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )
