"""Read-back: what to do with a journal row whose change may already be on the platform.

Stage: load. A row left ``sent`` by a crash, or ``failed`` with no answer we trust, is read
back from the platform before anything is sent (BASE ``items/detail``; eBay ``getOffers`` or
Trading ``GetItem``). One decision for both platforms, made here:

    the listing is gone            → quarantined, never retried
    it shows the new values        → ok, recorded without a call (so no change is applied twice)
    it shows the old values        → send it now
    it shows anything else         → skipped as drifted (changed by hand; pull and review decide)

Reads nothing itself: the push modules read the platform and pass what they saw as a
:class:`SeenListing`; writes nothing (the caller records the :class:`RowResult`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.journal import RowResult


@dataclass(frozen=True)
class SeenListing:
    """A listing's state on the platform, in the journal's units (minor units, pieces)."""

    price_minor: int | None
    quantity: int | None
    visible: bool | None = None  # BASE only


@dataclass(frozen=True)
class Gone:
    """How a platform reports a listing that no longer exists, as journaled."""

    http_status: int
    code: str
    message: str


def needs_reading_back(row: dict[str, Any]) -> bool:
    """Sent but never confirmed, or failed without an answer we trust (5xx, none, or a 200
    whose echo did not match): the change may be on the platform already."""
    if row["state"] == "sent":
        return True
    status = row.get("http_status")
    return row["state"] == "failed" and (status is None or status >= 500 or status == 200)


def sends_visible(row: dict[str, Any]) -> bool:
    """Whether the row changes the listing's visibility (BASE hides instead of zero stock)."""
    return row["new_visible"] is not None and row["new_visible"] != row["old_visible"]


def shows(seen: SeenListing, row: dict[str, Any], side: str) -> bool:
    """Whether the platform shows the row's ``side`` (old | new) values."""
    if seen.price_minor != row[f"{side}_price_minor"] or seen.quantity != row[f"{side}_quantity"]:
        return False
    return not sends_visible(row) or seen.visible == row[f"{side}_visible"]


def read_back_result(
    row: dict[str, Any], seen: SeenListing | None, *, platform_name: str, gone: Gone
) -> RowResult | None:
    """The row's outcome from what the platform shows; None when it shows the old values
    and the row must be sent now."""
    if seen is None:
        return RowResult(row, "quarantined", gone.http_status, gone.code, gone.message)
    if shows(seen, row, "new"):
        return RowResult(row, "ok", 200, None, None)
    if shows(seen, row, "old"):
        return None
    return RowResult(
        row,
        "skipped",
        200,
        "drifted",
        f"the listing's price or stock on {platform_name} is neither the old nor the new "
        "value: changed by hand; the next pull and review decide",
        drifted=True,
    )
