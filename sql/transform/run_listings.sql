-- run_listings: the listings a run prices — every listed listing of both platforms in one
-- shape, one row per (platform, account_id, listing_key), with its price, stock and
-- visibility before the run's push (old_*). Listed includes a BASE item invsync hid (visible
-- false, hidden_by_invsync): a restock shows it again. Unlisted (hidden by hand), unmapped,
-- gone and quarantined listings are left out.
-- Its own view so a replay (pipeline/whatif.py) can define run_listings over the listings as
-- they stood at a past run (data/listings/…) and price them with the same SQL.
-- Reads: listings_base, listings_ebay. No parameters.
create or replace temp view run_listings as

with

base_listings as (
    select
        'base' as platform,
        account_id,
        cast(item_id as varchar) as listing_key,
        item_id,
        cast(null as varchar) as sku,
        cast(null as varchar) as offer_id,
        cast(null as varchar) as listing_id,
        cast(null as varchar) as api,
        cast(null as varchar) as currency,
        asin,
        price_jpy as old_price,
        -- BASE sets the stock of an item with variations (their sum): hidden is how invsync
        -- takes it out of stock, so hidden reads as 0 (docs/load.md)
        cast(case when has_variations and not visible then 0 else stock end as bigint)
            as old_quantity,
        visible as old_visible,
        drift_detected_at is not null as drifted,
        title
    from listings_base
    where status = 'listed'
),

ebay_listings as (
    select
        'ebay' as platform,
        account_id,
        sku as listing_key,
        cast(null as bigint) as item_id,
        sku,
        offer_id,
        listing_id,
        api,
        currency,
        asin,
        price_cents as old_price,
        cast(quantity as bigint) as old_quantity,
        true as old_visible,  -- eBay has no hidden state: out of stock is quantity 0
        drift_detected_at is not null as drifted,
        title
    from listings_ebay
    where status = 'listed'
)

select * from base_listings
union all
select * from ebay_listings
