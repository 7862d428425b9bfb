-- price_history: every Amazon observation that is a fact, over all runs.
-- Failed fetches (api_error, unknown, invalid_asin) are not facts and fallback rows are
-- copies of an older fact; both are left out here and counted in fetch_health.
with observations as (
    select * from snapshots
),

final as (
    select
        asin,
        fetched_at,
        price_jpy as price,          -- landed price, JPY (listing + shipping - points)
        in_stock,
        status,
        run_id,
        operation,
        offer_count,
        eligible_offer_count
    from observations
    where status in ('ok', 'no_offer', 'filtered_out')
)

select * from final
