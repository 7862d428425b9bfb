-- fetch_health: per run, how complete and how fast the Amazon fetch was.
-- coverage = facts / ASINs; coverage_of_valid = facts / the ASINs that are ASINs Amazon knows
-- (an invalid ASIN is the listing's fault, not the fetch's: a flawless fetch has 1.0 here).
-- pace_vs_floor = fetch time / quota floor (1.00 is as fast as the quota allows).
-- Ratios are rounded to 4 places, halves away from zero (DuckDB round).
with per_run as (
    select
        run_id,
        count(*) as asins,
        count(*) filter (where status in ('ok', 'no_offer', 'filtered_out')) as facts,
        count(*) filter (where status = 'api_error') as api_errors,
        count(*) filter (where status = 'unknown') as unknowns,
        count(*) filter (where status = 'fallback') as fallbacks,
        count(*) filter (where status = 'invalid_asin') as invalid_asins,
        min(fetched_at) as first_fetched_at,
        max(fetched_at) as last_fetched_at
    from snapshots
    group by run_id
),

final as (
    select
        r.run_id,
        r.started_at,
        r.outcome,
        r.operation,
        p.asins,
        p.asins - p.invalid_asins as valid_asins,
        p.facts,
        round(p.facts / nullif(p.asins, 0), 4) as coverage,
        round(p.facts / nullif(p.asins - p.invalid_asins, 0), 4) as coverage_of_valid,
        p.api_errors,
        p.unknowns,
        p.fallbacks,
        p.invalid_asins,
        r.spapi_calls,
        r.spapi_429s,
        r.spapi_retries,
        r.fetch_seconds,
        r.quota_floor_seconds,
        round(r.fetch_seconds / nullif(r.quota_floor_seconds, 0), 4) as pace_vs_floor
    from runs as r
    inner join per_run as p on p.run_id = r.run_id
)

select * from final
