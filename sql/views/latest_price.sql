-- latest_price: the newest fact per ASIN.
with ranked as (
    select
        *,
        row_number() over (partition by asin order by fetched_at desc, run_id desc) as recency
    from price_history
),

final as (
    select asin, fetched_at, price, in_stock, status, run_id
    from ranked
    where recency = 1
)

select * from final
