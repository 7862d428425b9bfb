-- oos_episodes: one row per stretch of time an ASIN was out of stock on Amazon.
-- started_at is the first observation out of stock, ended_at the first one back in
-- stock (null while the episode is ongoing), last_observed_at the last one out of stock.
-- duration_seconds runs to ended_at, or while ongoing to last_observed_at (so far).
with observations as (
    select asin, fetched_at, in_stock from price_history where in_stock is not null
),

marked as (
    select
        *,
        lag(in_stock) over (partition by asin order by fetched_at) as previous_in_stock
    from observations
),

grouped as (
    select
        *,
        sum(case when previous_in_stock is null or in_stock <> previous_in_stock then 1 else 0 end)
            over (partition by asin order by fetched_at rows unbounded preceding) as streak
    from marked
),

streaks as (
    select
        asin,
        streak,
        bool_and(in_stock) as in_stock,
        min(fetched_at) as started_at,
        max(fetched_at) as last_observed_at,
        count(*) as observations
    from grouped
    group by asin, streak
),

bounded as (
    select
        *,
        lead(started_at) over (partition by asin order by streak) as ended_at
    from streaks
),

final as (
    select
        asin,
        started_at,
        ended_at,
        last_observed_at,
        ended_at is null as ongoing,
        observations,
        date_diff('second', started_at, coalesce(ended_at, last_observed_at)) as duration_seconds
    from bounded
    where not in_stock
)

select * from final
