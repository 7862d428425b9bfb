-- diff_ebay: the eBay listings whose price or quantity changes in run $run_id, one row per
-- SKU (pipeline/schemas.py PricedDiffEbay). Money: integer US cents; cost_jpy in yen.
-- Reads: priced_changes (sql/transform/priced_listings.sql), which carries the eBay ids.
with

changes as (
    select *
    from priced_changes
    where platform = 'ebay'
),

final as (
    select
        cast($run_id as varchar) as run_id,
        platform,
        account_id,
        listing_key,
        sku,
        offer_id,
        listing_id,
        api,
        currency,
        asin,
        change_kind,
        cast(old_price as bigint) as old_price_cents,
        cast(new_price as bigint) as new_price_cents,
        old_quantity,
        new_quantity,
        cast(target_price as bigint) as target_price_cents,
        min_price as min_price_cents,
        max_price as max_price_cents,
        min_profit as min_profit_cents,
        cast(expected_profit as bigint) as expected_profit_cents,
        cost_jpy,
        fx_text as fx_jpy_per_usd,
        method as pricing_method,
        source_run_id,
        source_fetched_at,
        source_status,
        source_fallback_age_seconds,
        held,
        hold_reason
    from changes
)

select * from final
order by account_id, listing_key
