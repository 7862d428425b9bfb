-- A run's fetch plan in the shape of pipeline.schemas.Asins (per-platform counts are not
-- kept: a resumed fetch needs only the ASINs).
select
    asin,
    valid,
    listings::bigint as listings,
    platforms,
    accounts
from fetch_plan
where run_id = $run_id
order by asin
