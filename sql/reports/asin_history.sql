-- One ASIN over time for `invsync history`: every observation, oldest first.
with observations as (
    select * from snapshots where asin = $asin
),

final as (
    select
        fetched_at,
        run_id,
        status,
        price_jpy,
        in_stock,
        offer_count,
        fallback_from_run
    from observations
)

select * from final order by fetched_at, run_id
