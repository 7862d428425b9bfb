-- diff_base: the BASE listings whose price, stock or visibility changes in run $run_id, one
-- row per listing (pipeline/schemas.py PricedDiffBase). Money: integer yen.
-- Reads: priced_changes (sql/transform/priced_listings.sql).
with

changes as (
    select *
    from priced_changes
    where platform = 'base'
),

final as (
    select
        cast($run_id as varchar) as run_id,
        platform,
        account_id,
        listing_key,
        item_id,
        asin,
        change_kind,
        cast(old_price as bigint) as old_price_jpy,
        cast(new_price as bigint) as new_price_jpy,
        old_quantity as old_stock,
        new_quantity as new_stock,
        old_visible,
        new_visible,
        cast(target_price as bigint) as target_price_jpy,
        min_price as min_price_jpy,
        max_price as max_price_jpy,
        min_profit as min_profit_jpy,
        cast(expected_profit as bigint) as expected_profit_jpy,
        cost_jpy,
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
order by account_id, item_id
