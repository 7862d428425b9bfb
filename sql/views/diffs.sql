-- diffs: every change a run decided on, both platforms, one row per listing and run, in one
-- shape (pipeline/schemas.py PricedDiff): prices in integer minor units of `currency` — yen
-- (JPY) on BASE, US cents (USD) on eBay. run_id and platform come from each file's path.
-- diff_base and diff_ebay show one platform each in its own units and names. The file holds
-- the FX rate as exact text; diff_rows reads it as DECIMAL(12,4) JPY per USD (null on BASE).
with final as (
    select
        run_id,
        platform,
        * exclude (run_id, platform)
    from diff_rows
)

select * from final
