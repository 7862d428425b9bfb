-- diff_ebay: the eBay listings whose price or quantity changes in run $run_id, one row per
-- SKU (pipeline/schemas.py PricedDiffEbay). Money: integer US cents; cost_jpy in yen.
-- Reads: priced_listings (sql/transform/priced_listings.sql), listings_ebay for the ids.
with

changes as (
    select *
    from priced_listings
    where platform = 'ebay' and change_kind is not null
),

final as (
    select
        cast($run_id as varchar) as run_id,
        changes.platform,
        changes.account_id,
        changes.listing_key,
        listings.sku,
        listings.offer_id,
        listings.listing_id,
        listings.api,
        listings.currency,
        changes.asin,
        changes.change_kind,
        cast(changes.old_price as bigint) as old_price_cents,
        cast(changes.new_price as bigint) as new_price_cents,
        changes.old_quantity,
        changes.new_quantity,
        cast(changes.target_price as bigint) as target_price_cents,
        changes.min_price as min_price_cents,
        changes.max_price as max_price_cents,
        changes.min_profit as min_profit_cents,
        cast(changes.expected_profit as bigint) as expected_profit_cents,
        changes.cost_jpy,
        changes.fx_text as fx_jpy_per_usd,
        changes.method as pricing_method,
        changes.source_run_id,
        changes.source_fetched_at,
        changes.source_status,
        changes.source_fallback_age_seconds,
        changes.held,
        changes.hold_reason
    from changes
    inner join listings_ebay as listings
        on listings.account_id = changes.account_id
        and listings.sku = changes.listing_key
)

select * from final
order by account_id, listing_key
