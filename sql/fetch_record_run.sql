-- The fetch figures the shared runs helper does not name (migration 010).
update runs
set spapi_retry_pass_calls = $retry_pass_calls,
    spapi_rate = $rate,
    fetch_interruptions = $interruptions
where run_id = $run_id
