-- The latest run whose fetch was interrupted (or failed) and that has a fetch plan.
select r.run_id
from runs as r
where r.outcome in ('interrupted', 'failed')
  and exists (select 1 from fetch_plan as p where p.run_id = r.run_id)
order by r.started_at desc, r.run_id desc
limit 1
