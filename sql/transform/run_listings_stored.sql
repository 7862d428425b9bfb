-- run_listings over stored history: the listings as they stood at a past run, from its
-- data/listings/… files (sql/transform/listing_history.sql wrote them), in the shape
-- sql/transform/run_listings.sql gives the live tables, so the same pricing SQL replays them.
-- The inverse of listing_history.sql's renames: BASE's currency is null in the live shape
-- (the rule's, yen), its api is the load's. Titles are not stored (a replay needs none).
-- Reads: stored_listings (a frame or view with the history columns plus platform), which
-- pipeline/whatif.py registers. No parameters.
create or replace temp view run_listings as

select
    platform,
    account_id,
    listing_key,
    item_id,
    sku,
    offer_id,
    listing_id,
    case when platform = 'ebay' then api end as api,
    case when platform = 'ebay' then currency end as currency,
    asin,
    price_minor as old_price,
    quantity as old_quantity,
    visible as old_visible,
    drifted,
    cast(null as varchar) as title
from stored_listings
