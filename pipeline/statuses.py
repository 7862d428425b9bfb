"""What an Amazon observation and a listing can be: every status set of invsync, named once.

A snapshot row's ``status`` says what SP-API answered about one ASIN in one run; the sets
below say what each status lets the later stages do (docs/fetch.md, docs/pricing.md).
"""

from __future__ import annotations

SNAPSHOT_STATUSES = [
    "ok",  # priced and stocked from this run's answer
    "no_offer",  # Amazon answered: no buyable offer
    "filtered_out",  # offers exist, none passes the offer policy
    "api_error",  # the call failed; never read as a fact
    "invalid_asin",  # Amazon rejected the ASIN itself
    "fallback",  # the last good observation, younger than max_fallback_age
    "unknown",  # failed and no usable fallback: listings stay as they are
]
# What Amazon said about the ASIN itself: usable later as a fallback observation.
GOOD_STATUSES = ("ok", "no_offer", "filtered_out")
# Answered for good in this run: a resumed fetch keeps these and asks again for the rest.
FINAL_STATUSES = (*GOOD_STATUSES, "invalid_asin")
# Never change a listing: an error is not a fact.
DOUBTFUL_STATUSES = ("api_error", "unknown", "invalid_asin")
# Amazon answered: nothing to buy, so the listings go out of stock.
OUT_OF_STOCK_STATUSES = ("no_offer", "filtered_out")

LISTING_STATUSES = ["listed", "unlisted", "quarantined", "gone"]
