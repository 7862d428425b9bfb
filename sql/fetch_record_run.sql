-- The fetch figures the shared runs helper does not name (migrations 010, 054): the
-- per-operation calls and rates are JSON objects keyed by snapshot operation (pool lanes).
update runs
set spapi_retry_pass_calls = $retry_pass_calls,
    spapi_rate = $rate,
    fetch_interruptions = $interruptions,
    spapi_operation_calls = $operation_calls,
    spapi_operation_rates = $operation_rates
where run_id = $run_id
