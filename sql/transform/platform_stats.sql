-- platform_stats: per platform of run $run_id, what the review breaker judges — how many
-- listings Amazon calls buyable, out of stock, doubtful or missing, and how many ASINs the
-- snapshot covers against what extract recorded (runs.unique_asins).
-- Keyed by replay_run like observed_listings: a live transform's one run ('') is $run_id; a
-- replay of many runs (pipeline/whatif.py) gets one row per run and platform, each with
-- its own run_id.
-- Reads: observed_listings (every listing), priced_changes (the changed ones), pricing_rules,
-- run_snapshot (the frames pipeline/transform.py registers), runs.
-- Parameters: $run_id, $as_of.
with

platforms as (
    select distinct
        replay_run,
        platform,
        coalesce(nullif(replay_run, ''), $run_id) as run_id
    from pricing_rules
),

per_platform as (
    select
        replay_run,
        platform,
        count(*) as listings,
        count(*) filter (where source_says = 'in_stock') as source_in_stock,
        count(*) filter (where source_says = 'out_of_stock') as source_out_of_stock,
        count(*) filter (where source_status in ('api_error', 'unknown')) as source_doubtful,
        count(*) filter (
            where source_status is null or source_status = 'invalid_asin'
        ) as source_missing
    from observed_listings
    group by replay_run, platform
),

changes as (
    select
        replay_run,
        platform,
        count(*) as diff_rows,
        count(*) filter (where held) as held_rows
    from priced_changes
    group by replay_run, platform
),

coverage as (
    select
        replay_run,
        count(distinct asin) as snapshot_asins
    from run_snapshot
    group by replay_run
),

extracted as (
    select
        run_id,
        max(unique_asins) as extracted_asins
    from runs
    group by run_id
),

final as (
    select
        cast(platforms.run_id as varchar) as run_id,
        platforms.platform,
        coalesce(per_platform.listings, 0) as listings,
        coalesce(per_platform.source_in_stock, 0) as source_in_stock,
        coalesce(per_platform.source_out_of_stock, 0) as source_out_of_stock,
        coalesce(per_platform.source_doubtful, 0) as source_doubtful,
        coalesce(per_platform.source_missing, 0) as source_missing,
        coalesce(coverage.snapshot_asins, 0) as snapshot_asins,
        extracted.extracted_asins,
        coalesce(changes.diff_rows, 0) as diff_rows,
        coalesce(changes.held_rows, 0) as held_rows,
        cast($as_of as timestamptz) as as_of
    from platforms
    left join per_platform using (replay_run, platform)
    left join changes using (replay_run, platform)
    left join coverage using (replay_run)
    left join extracted on extracted.run_id = platforms.run_id
)

select * from final
order by run_id, platform
