-- listing_history: one platform's listings as they stood at the run, with what the run decided
-- for each — the file data/listings/run_id=<run>/platform=<p>/listings.parquet
-- (pipeline/schemas.py ListingHistory). price_minor, quantity and visible are the listing
-- before the run's push; new_* and change_kind are the run's decision (null where nothing
-- changes). The analysts' views read it as our listing price and stock over time and its
-- margin; a what-if replay (pipeline/whatif.py) prices its input columns again
-- (sql/transform/run_listings_stored.sql maps them back).
--
-- Money: integer minor units of `currency` — yen on BASE ('JPY'), US cents on eBay ('USD');
-- cost_jpy is always yen. No run_id or platform column: the path holds both.
--
-- Reads: priced_all (sql/transform/priced_listings.sql with $changes_only false).
-- Parameters: $platform.
with

listings as (
    select *
    from priced_all
    where platform = $platform
),

final as (
    select
        account_id,
        listing_key,
        asin,
        item_id,                              -- BASE
        sku,                                  -- eBay
        offer_id,                             -- eBay Inventory API
        listing_id,                           -- eBay ItemID (Trading API)
        case when platform = 'base' then 'items/edit' else api end as api,
        case when platform = 'base' then 'JPY' else currency end as currency,
        old_price as price_minor,             -- before this run's push
        old_quantity as quantity,
        old_visible as visible,
        drifted,                              -- changed by hand since our last push
        cost_jpy,                             -- Amazon landed price the rule used, JPY
        source_status,
        source_says,                          -- in_stock | out_of_stock | ignore
        source_run_id,
        current_profit as current_profit_minor,   -- at price_minor; null unless in stock
        change_kind,                          -- null: nothing changes
        new_price as new_price_minor,
        new_quantity,
        new_visible,
        held,
        hold_reason,
        expected_profit as expected_profit_minor, -- at new_price_minor
        change_id
    from listings
)

select * from final
