-- The newest runs for `invsync runs`: outcome, SP-API calls, 429s, pace against the
-- quota floor, pushes and holds. $last: how many.
with recent as (
    select * from runs order by started_at desc, run_id desc limit $last
),

final as (
    select
        run_id,
        command,
        mode,
        outcome,
        started_at,
        date_diff('millisecond', started_at, finished_at) / 1000.0 as seconds,
        unique_asins,
        spapi_calls,
        spapi_429s,
        spapi_retries,
        fetch_seconds,
        quota_floor_seconds,
        round(fetch_seconds / nullif(quota_floor_seconds, 0), 3) as pace_vs_floor,
        fallbacks,
        unknowns,
        diffs,
        holds,
        pushes,
        push_failures,
        message
    from recent
)

select * from final order by started_at desc, run_id desc
