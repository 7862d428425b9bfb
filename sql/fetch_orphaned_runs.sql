-- `fetch` runs still marked running; the caller holds the run lock, so the process that
-- ran each is gone (kill -9, a power cut).
select r.run_id
from runs as r
where r.outcome = 'running'
  and r.command = 'fetch'
order by r.started_at, r.run_id
