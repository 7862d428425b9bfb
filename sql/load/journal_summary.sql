-- Rows per platform, account and state for one run.
select platform, account_id, state, count(*)::integer as rows
from push_journal
where run_id = $run_id
group by all
order by all
