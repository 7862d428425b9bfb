-- The latest run whose fetch was interrupted (or failed) and that has a fetch plan, or a
-- `fetch` run still marked running: the caller holds the run lock, so its process is gone
-- (kill -9, a power cut) and its checkpoint holds what it fetched.
select r.run_id
from runs as r
where (r.outcome in ('interrupted', 'failed') or (r.outcome = 'running' and r.command = 'fetch'))
  and exists (select 1 from fetch_plan as p where p.run_id = r.run_id)
order by r.started_at desc, r.run_id desc
limit 1
