-- run_snapshot for a replay: every replayed run's Amazon snapshot, each row keyed by its run
-- as replay_run (the run_id of its path), under the name sql/transform/observed_listings.sql
-- reads (pipeline/whatif.py prices every run of the window at once).
--
-- Reads: $files, the runs' snapshots/amazon/dt=<day>/run_id=<run>/part-0.parquet (only the
-- columns observed_listings.sql reads; the run from the path, whether or not the file also
-- holds it).
create or replace temp table run_snapshot as
select
    regexp_extract(filename, 'run_id=([^/]+)/[^/]+$', 1) as run_id,  -- the path's, as live
    asin,
    status,
    price_jpy,
    in_stock,
    fetched_at,
    fallback_from_run,
    fallback_age_seconds,
    regexp_extract(filename, 'run_id=([^/]+)/[^/]+$', 1) as replay_run
from read_parquet($files, filename = true, hive_partitioning = false)
