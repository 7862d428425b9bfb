"""The selling platforms invsync keeps in step with Amazon, named once.

``base`` is BASE (several shops, integer yen); ``ebay`` is eBay (one or more accounts,
integer US cents; Inventory API and Trading API listings).
"""

from __future__ import annotations

from typing import Literal

Platform = Literal["base", "ebay"]
PLATFORMS: tuple[str, ...] = ("base", "ebay")  # each a Platform
CURRENCY: dict[str, str] = {"base": "JPY", "ebay": "USD"}  # what each platform's prices are in
DISPLAY_NAMES: dict[str, str] = {"base": "BASE", "ebay": "eBay"}
