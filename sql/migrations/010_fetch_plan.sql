-- 010: what a fetch set out to do, so an interrupted run can be resumed without
-- fetching any ASIN twice, and the pacing figures the runs table lacked.
create table fetch_plan (
    run_id        varchar not null,
    asin          varchar not null,
    valid         boolean not null,         -- has ASIN form; malformed ones are never sent
    listings      integer not null,         -- listed listings pointing at it
    platforms     varchar[] not null,
    accounts      varchar[] not null,
    primary key (run_id, asin)
);

alter table runs add column if not exists spapi_retry_pass_calls integer;  -- calls of the one retry pass
alter table runs add column if not exists spapi_rate double;              -- requests/s in use at the end
alter table runs add column if not exists fetch_interruptions integer;    -- times the fetch was stopped and resumed
