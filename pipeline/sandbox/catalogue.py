"""The sandbox's Amazon.co.jp catalogue: ASINs, their New offers, and the demo shops' listings.

Stage: sandbox (no pipeline stage). Reads nothing; the whole world follows from a seed.
Writes nothing itself; ``dump()``/``load()`` give the server what it persists.

* ``Catalogue(seed, n_asins)`` builds ``n_asins`` valid ASINs, each with 0–20 New offers
  (about 4 % with none) in integer yen, plus a handful of ASIN-shaped codes that Amazon
  rejects as invalid. ASIN ``i`` depends only on (seed, i), so a bigger catalogue starts
  with the smaller one.
* ``tick()`` advances the world one step: some prices drift, a few ASINs lose or regain
  their offers. Step ``n`` depends only on (seed, n), so replaying ticks rebuilds a world.
* ``demo_listings()`` names the ASINs each demo account lists (BASE shop1, shop2; eBay
  ebay-main), about 1.5 listings per ASIN, overlapping across shops and platforms.

Money is integer yen throughout; prices are floored to 10 yen (a named rounding mode:
toward zero) when they are made or drift.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from dataclasses import dataclass
from typing import Any

DEFAULT_N_ASINS = 2000
N_INVALID_ASINS = 8
DEMO_ACCOUNTS = ("shop1", "shop2", "ebay-main")
MIN_PRICE = 300  # JPY, lowest listing price the catalogue makes
MAX_PRICE = 30_000  # JPY, highest
AMAZON_JP_SELLER = "AN1VRQENFRJN5"  # Amazon.co.jp's own seller id
_ALNUM = string.ascii_uppercase + string.digits
_CATEGORIES = (
    "home_display_on_website",
    "kitchen_display_on_website",
    "toy_display_on_website",
    "hobby_display_on_website",
    "beauty_display_on_website",
    "electronics_display_on_website",
    "book_display_on_website",
)
_SHIP_HOURS = ((0, 0), (24, 48), (48, 72), (72, 96), (96, 120), (168, 336))
_PREFECTURES = ("Tokyo", "Osaka", "Kanagawa", "Chiba", "Saitama", "Aichi", "Fukuoka")


@dataclass(slots=True)
class Offer:
    """One New offer on Amazon.co.jp. Amounts in JPY; 1 point is worth 1 yen."""

    seller_id: str
    listing: int  # JPY
    shipping: int  # JPY
    points_pct: int  # points the buyer earns, percent of the listing price (1 point = 1 yen)
    fba: bool  # fulfilled by Amazon
    prime: bool
    availability: str  # NOW | FUTURE_WITHOUT_DATE | FUTURE_WITH_DATE
    min_hours: int  # shipping time, hours
    max_hours: int
    available_in_days: int  # FUTURE_WITH_DATE: days from today until it ships
    positive_percent: float  # seller feedback, percent positive
    feedback_count: int
    ships_from: str  # ISO country
    state: str  # prefecture or region, "" when abroad

    @property
    def points(self) -> int:
        """JPY value of the points, floored (points are whole)."""
        return self.listing * self.points_pct // 100

    @property
    def landed(self) -> int:
        """Listing + shipping − points, JPY (Amazon's LandedPrice for JP)."""
        return self.listing + self.shipping - self.points

    def available_date(self, today: dt.date) -> str | None:
        if self.availability != "FUTURE_WITH_DATE":
            return None
        day = today + dt.timedelta(days=self.available_in_days)
        return f"{day.isoformat()}T00:00:00Z"


@dataclass(slots=True)
class Product:
    """One valid ASIN and its current offers."""

    asin: str
    base_price: int  # JPY, the price level its offers are made around
    list_price: int  # JPY, the maker's list price
    category: str
    sales_rank: int
    offers: list[Offer]


def _floor10(yen: float) -> int:
    """Floor to a multiple of 10 yen (rounding toward zero), clamped to the catalogue range."""
    return min(MAX_PRICE, max(MIN_PRICE, int(yen) // 10 * 10))


def _code(rng: random.Random, prefix: str, length: int) -> str:
    return prefix + "".join(rng.choice(_ALNUM) for _ in range(length))


class Catalogue:
    """The seeded world of ASINs and offers the SP-API routes answer from."""

    def __init__(self, seed: int = 42, n_asins: int | None = None) -> None:
        self.seed = seed
        self.n_asins = DEFAULT_N_ASINS if n_asins is None else int(n_asins)
        self._build()

    # --- building -------------------------------------------------------------------

    def _build(self) -> None:
        self.tick_number = 0
        self._listings: dict[str, list[str]] | None = None
        seller_rng = random.Random(f"{self.seed}/sellers")
        self.sellers = [_code(seller_rng, "A", 13) for _ in range(400)]
        self.products: dict[str, Product] = {}
        index = 0
        while len(self.products) < self.n_asins:
            rng = random.Random(f"{self.seed}/asin/{index}")
            index += 1
            asin = _code(rng, "B0", 8)
            if asin in self.products:
                continue  # a collision in 36**8 codes: skip this index, stay deterministic
            self.products[asin] = self._product(asin, rng)
        self.asins = list(self.products)
        invalid_rng = random.Random(f"{self.seed}/invalid")
        self.invalid_asins: list[str] = []
        while len(self.invalid_asins) < N_INVALID_ASINS:
            code = _code(invalid_rng, "B0", 8)
            if code not in self.products and code not in self.invalid_asins:
                self.invalid_asins.append(code)

    def _product(self, asin: str, rng: random.Random) -> Product:
        # log-uniform price level between 300 and 30,000 yen
        base = _floor10(MIN_PRICE * (MAX_PRICE / MIN_PRICE) ** rng.random())
        n_offers = 0 if rng.random() < 0.04 else min(20, 1 + int(rng.expovariate(1 / 5)))
        return Product(
            asin=asin,
            base_price=base,
            list_price=min(MAX_PRICE * 2, int(base * rng.uniform(1.1, 1.6)) // 10 * 10),
            category=rng.choice(_CATEGORIES),
            sales_rank=int(rng.expovariate(1 / 40_000)) + 1,
            offers=[self._offer(rng, base) for _ in range(n_offers)],
        )

    def _offer(self, rng: random.Random, base: int) -> Offer:
        amazon_itself = rng.random() < 0.05
        fba = amazon_itself or rng.random() < 0.45
        prime = fba or rng.random() < 0.05  # merchant-fulfilled Prime is rare
        listing = _floor10(base * rng.uniform(0.95, 1.35))
        shipping = 0 if prime else rng.choice((0, 0, 350, 500, 640, 800))
        points_pct = rng.choice((1, 2, 3, 5, 10)) if rng.random() < 0.3 else 0
        roll = rng.random()
        availability = (
            "NOW" if roll < 0.85 else "FUTURE_WITHOUT_DATE" if roll < 0.93 else "FUTURE_WITH_DATE"
        )
        if fba:
            min_hours, max_hours = rng.choice(((0, 0), (24, 24)))
        else:
            min_hours, max_hours = rng.choice(_SHIP_HOURS[1:])
        abroad = not fba and rng.random() < 0.1
        return Offer(
            seller_id=AMAZON_JP_SELLER if amazon_itself else rng.choice(self.sellers),
            listing=listing,
            shipping=shipping,
            points_pct=points_pct,
            fba=fba,
            prime=prime,
            availability=availability,
            min_hours=min_hours if not abroad else 168,
            max_hours=max_hours if not abroad else 336,
            available_in_days=rng.randint(3, 30),
            positive_percent=round(rng.uniform(80.0, 100.0), 1),
            feedback_count=int(rng.expovariate(1 / 2000)),
            ships_from="CN" if abroad else "JP",
            state="" if abroad else rng.choice(_PREFECTURES),
        )

    # --- questions ------------------------------------------------------------------

    def is_valid(self, asin: str) -> bool:
        return asin in self.products

    def offers(self, asin: str) -> list[Offer]:
        """The ASIN's offers, cheapest landed first (as Amazon lists them)."""
        product = self.products.get(asin)
        if product is None:
            return []
        return sorted(product.offers, key=lambda o: (o.landed, o.shipping, o.seller_id))

    def buy_box(self, asin: str) -> Offer | None:
        """The buy-box winner: the cheapest landed offer that ships now from a seller with
        at least 90 % positive feedback or FBA; None when no offer qualifies (suppressed)."""
        eligible = [o for o in self.offers(asin) if _buy_box_eligible(o)]
        if not eligible:
            return None
        return min(eligible, key=lambda o: (o.landed, not o.fba, o.seller_id))

    def reference_price(self, asin: str) -> int | None:
        """Today's lowest landed price of the ASIN in JPY, None when it has no offer."""
        offers = self.offers(asin)
        return offers[0].landed if offers else None

    def too_soon(self, asin: str, share: float) -> bool:
        """Whether ``asin`` is among a seeded ``share`` of the ASINs whose offers are not
        processable yet (SP-API ActiveButTooSoonForProcessing) at this tick: the same ASINs
        all tick long, others after the world moves."""
        if share <= 0:
            return False
        draw = random.Random(f"{self.seed}/too-soon/{self.tick_number}/{asin}").random()
        return draw < share

    def demo_listings(self) -> dict[str, list[str]]:
        """ASINs per demo account: about 1.5 listings per ASIN over every catalogue ASIN and
        the invalid ones, each ASIN on one (55 %), two (40 %) or all three (5 %) accounts."""
        if self._listings is None:
            rng = random.Random(f"{self.seed}/listings/{self.n_asins}")
            pool = [*self.asins, *self.invalid_asins]
            rng.shuffle(pool)
            listings: dict[str, list[str]] = {account: [] for account in DEMO_ACCOUNTS}
            for asin in pool:
                roll = rng.random()
                k = 1 if roll < 0.55 else 2 if roll < 0.95 else 3
                for account in rng.sample(DEMO_ACCOUNTS, k):
                    listings[account].append(asin)
            self._listings = listings
        return {account: list(asins) for account, asins in self._listings.items()}

    # --- the world moves ------------------------------------------------------------

    def tick(self) -> dict[str, Any]:
        """One tick: ~5 % of ASINs drift in price (±6 % on about half their offers); ~1 %
        lose every offer, ~1 % lose a seller (and maybe gain another), and a quarter of
        the ASINs without offers get 1–5 back. Deterministic per (seed, tick number)."""
        self.tick_number += 1
        rng = random.Random(f"{self.seed}/tick/{self.tick_number}")
        n = len(self.asins)
        repriced: list[str] = []
        for i in sorted(rng.sample(range(n), max(1, n * 5 // 100))):
            product = self.products[self.asins[i]]
            if not product.offers:
                continue
            for offer in product.offers:
                if rng.random() < 0.5:
                    offer.listing = _floor10(offer.listing * (1 + rng.uniform(-0.06, 0.06)))
            repriced.append(product.asin)
        vanished: list[str] = []
        appeared: list[str] = []
        changed: list[str] = []
        # a quarter of the empty ASINs come back each tick, so the share without offers
        # settles near 0.01 / (0.01 + 0.25) ≈ 4 % instead of draining the catalogue
        for asin in [a for a in self.asins if not self.products[a].offers]:
            if rng.random() < 0.25:
                product = self.products[asin]
                count = rng.randint(1, 5)
                product.offers = [self._offer(rng, product.base_price) for _ in range(count)]
                appeared.append(asin)
        for i in sorted(rng.sample(range(n), max(1, n * 2 // 100))):
            product = self.products[self.asins[i]]
            if not product.offers or product.asin in appeared:
                continue
            if rng.random() < 0.5:
                product.offers = []
                vanished.append(product.asin)
            else:
                product.offers.pop(rng.randrange(len(product.offers)))
                if rng.random() < 0.5 and len(product.offers) < 20:
                    product.offers.append(self._offer(rng, product.base_price))
                changed.append(product.asin)
        return {
            "tick": self.tick_number,
            "repriced": repriced,
            "vanished": vanished,
            "appeared": appeared,
            "offers_changed": changed,
        }

    # --- persistence hook (see SandboxState.dump) -------------------------------------

    def dump(self) -> dict[str, Any]:
        return {"seed": self.seed, "n_asins": self.n_asins, "tick": self.tick_number}

    def load(self, data: dict[str, Any]) -> None:
        """Rebuild the world a ``dump()`` describes: regenerate, then replay its ticks."""
        seed = int(data.get("seed", self.seed))
        n_asins = int(data.get("n_asins", self.n_asins))
        ticks = int(data.get("tick", 0))
        if (seed, n_asins) != (self.seed, self.n_asins) or self.tick_number > ticks:
            self.seed, self.n_asins = seed, n_asins
            self._build()
        while self.tick_number < ticks:
            self.tick()


def _buy_box_eligible(offer: Offer) -> bool:
    return offer.availability == "NOW" and (offer.fba or offer.positive_percent >= 90.0)


def catalogue_of(state: Any) -> Catalogue:
    """The state's catalogue, created from its seed on first use."""
    with state.lock:
        found = state.apis.get("catalogue")
        if found is None:
            found = state.apis["catalogue"] = Catalogue(state.seed)
        return found
