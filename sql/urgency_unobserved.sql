-- urgency_unobserved: the columns of urgency_scores.sql when no snapshot exists yet: every
-- wanted ASIN never observed, ranked by ASIN (pipeline/urgency.py).
-- Reads: wanted_asins. No parameters.
select
    asin,
    cast(0 as bigint) as intervals,
    cast(0 as bigint) as changes,
    cast(null as double) as change_rate,
    cast(null as timestamptz) as last_observed_at,
    cast(null as double) as age_seconds,
    1.0 as p_changed,
    cast(0 as bigint) as exposure_jpy,
    0.0 as urgency,
    row_number() over (order by asin) as urgency_rank
from wanted_asins
order by urgency_rank
