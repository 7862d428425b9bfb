-- Record a run's fetch plan from the registered frame `plan_asins` (pipeline.schemas.Asins).
insert into fetch_plan (run_id, asin, valid, listings, platforms, accounts)
select $run_id, asin, valid, listings, platforms, accounts
from plan_asins
