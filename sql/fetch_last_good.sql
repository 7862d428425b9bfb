-- Fallback source: per wanted ASIN, the latest observation that states a fact
-- (ok, no_offer, filtered_out) from another run, younger than max_fallback_age.
-- Fallback rows are never a source (their age would hide the original one).
-- $files: snapshot file paths; $exclude_run: the run being fetched; $now, $since: UTC.
-- A file's run id is in its path only (snapshots/amazon/dt=…/run_id=…/), read as text.
with observations as (
    select s.* exclude (dt)
    from read_parquet(
        $files, union_by_name = true, hive_partitioning = true,
        hive_types = {'dt': varchar, 'run_id': varchar}
    ) as s
    join wanted_asins as w using (asin)
    where s.run_id <> $exclude_run
      and list_contains($good_statuses, s.status)
      and s.fetched_at is not null
      and s.fetched_at >= $since
      and s.fetched_at <= $now
),

ranked as (
    select
        *,
        row_number() over (partition by asin order by fetched_at desc, run_id desc) as rank
    from observations
),

final as (
    select
        * exclude (rank),
        epoch(cast($now as timestamptz)) - epoch(fetched_at) as age_seconds  -- seconds
    from ranked
    where rank = 1
)

select * from final
order by asin
