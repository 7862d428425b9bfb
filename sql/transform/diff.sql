-- diff: the listings of one platform whose price, stock or visibility changes in a run, one
-- row per listing, in the same columns for every platform (pipeline/schemas.py PricedDiff).
--
-- Money: integer minor units of `currency` — yen on BASE ('JPY'), US cents on eBay ('USD');
-- cost_jpy is always yen. listing_key is BASE's item_id as text or eBay's SKU. Visibility is
-- BASE's alone: null on eBay, where out of stock is quantity 0. api is how load sends the row
-- (items/edit on BASE; inventory or trading on eBay).
--
-- No run_id or platform column: transform writes each platform's rows to
-- diffs/run_id=<run>/platform=<p>/diff.parquet, whose path holds both, and readers add them
-- back (a Hive dataset whose files also hold a partition column does not open in pandas).
--
-- Reads: priced_changes (sql/transform/priced_listings.sql). Parameters: $platform.
with

changes as (
    select *
    from priced_changes
    where platform = $platform
),

final as (
    select
        account_id,
        listing_key,
        asin,
        change_kind,
        case when platform = 'base' then 'JPY' else currency end as currency,
        old_price as old_price_minor,
        new_price as new_price_minor,
        old_quantity,
        new_quantity,
        case when platform = 'base' then old_visible end as old_visible,
        case when platform = 'base' then new_visible end as new_visible,
        case when platform = 'base' then 'items/edit' else api end as api,
        offer_id,
        listing_id,
        target_price as target_price_minor,   -- the rule's price after min/max
        min_price as min_price_minor,
        max_price as max_price_minor,
        min_profit as min_profit_minor,
        expected_profit as expected_profit_minor,  -- at new_price_minor; null going out of stock
        cost_jpy,                             -- Amazon landed price the rule used, JPY
        fx_text as fx_jpy_per_usd,            -- the exact decimal rate used (eBay), as text
        method as pricing_method,
        source_run_id,
        source_fetched_at,
        source_status,
        source_fallback_age_seconds,          -- seconds
        held,
        hold_reason,
        change_id,                            -- what a decision binds to (decisions.py)
        title,
        current_profit as current_profit_minor,  -- at old_price_minor; null unless in stock
        protection,                           -- raise | pause, taken while a held row waits
        protection_reason
    from changes
)

select * from final
order by account_id, listing_key
