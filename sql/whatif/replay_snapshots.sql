-- replay_snapshots: every replayed run's Amazon snapshot, each row keyed by its run as
-- replay_run (the run_id of its path), and run_snapshot defined over them, the name
-- sql/transform/observed_listings.sql reads (pipeline/whatif.py).
--
-- Reads: $files, the runs' snapshots/amazon/dt=<day>/run_id=<run>/part-0.parquet.
create or replace temp table replay_snapshots as
select
    * exclude (filename),
    regexp_extract(filename, 'run_id=([^/]+)/[^/]+$', 1) as replay_run
from read_parquet($files, filename = true, hive_partitioning = false);

create or replace temp view run_snapshot as
select * from replay_snapshots;
