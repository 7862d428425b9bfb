-- observed_listings: every listed listing of a priced account with what this run's snapshot
-- says about its ASIN (source_says: in_stock / out_of_stock / ignore) and its account's rule.
-- Listed includes a BASE item invsync hid (visible false, hidden_by_invsync): a restock shows
-- it again. Unlisted (hidden by hand), unmapped, gone and quarantined listings are left out.
-- One row per listing (platform, account_id, listing_key). priced_listings.sql prices these
-- rows; platform_stats.sql counts all of them for the breaker. A view, so the join is
-- written once and each reader computes only the columns it needs.
--
-- Reads: run_listings (sql/transform/run_listings.sql over the listing tables, or a replay's
-- stored listings: pipeline/whatif.py) and three frames that pipeline/transform.py registers:
-- run_snapshot (the run's validated Amazon snapshot), pricing_rules (one row per account) and
-- markup_bands (read by priced_listings.sql). No parameters: a view cannot hold them.
create or replace temp view observed_listings as

with

listings as (
    select * from run_listings
),

snapshot as (
    select
        asin,
        status as source_status,
        price_jpy as cost_jpy,  -- landed Amazon price, JPY
        in_stock,
        fetched_at as source_fetched_at,
        case when status = 'fallback' then fallback_from_run else run_id end as source_run_id,
        fallback_age_seconds as source_fallback_age_seconds  -- seconds
    from run_snapshot
),

observed as (
    select
        listings.*,
        snapshot.* exclude (asin),
        rules.* exclude (platform, account_id),
        -- An error is not a fact: doubtful or missing observations change nothing.
        case
            when snapshot.source_status is null
                or snapshot.source_status in ('api_error', 'unknown', 'invalid_asin')
                then 'ignore'
            when snapshot.source_status in ('no_offer', 'filtered_out')
                or snapshot.in_stock = false
                then 'out_of_stock'
            when snapshot.source_status in ('ok', 'fallback')
                and snapshot.in_stock
                and snapshot.cost_jpy is not null
                then 'in_stock'
            else 'ignore'
        end as source_says
    from listings
    inner join pricing_rules as rules using (platform, account_id)
    left join snapshot using (asin)
)

select * from observed
