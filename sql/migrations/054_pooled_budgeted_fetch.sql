-- 054 (issue 16): pooled and budgeted fetches. fetch_budget_seconds is the quota time a
-- budgeted run was given (null: a full pass of every listed ASIN); spapi_operation_calls
-- and spapi_operation_rates hold, per snapshot operation (item_offers,
-- item_offers_single, competitive_pricing), the calls put on the wire and the rate in use
-- at the end (requests/s), as JSON objects.
alter table runs add column if not exists fetch_budget_seconds double;
alter table runs add column if not exists spapi_operation_calls varchar;
alter table runs add column if not exists spapi_operation_rates varchar;
