-- diff_base: BASE's changes from the diffs view, in BASE's names and units: integer yen
-- (*_jpy), item_id, stock and visibility. One row per item and run; the eBay-only columns
-- (offer_id, listing_id, fx_jpy_per_usd) and the constant ones (platform, currency, api) left out.
with final as (
    select
        run_id,
        account_id,
        cast(listing_key as bigint) as item_id,
        * exclude (run_id, account_id, listing_key, platform, currency, api, offer_id,
                   listing_id, fx_jpy_per_usd)
          rename (old_price_minor as old_price_jpy, new_price_minor as new_price_jpy,
                  old_quantity as old_stock, new_quantity as new_stock,
                  target_price_minor as target_price_jpy, min_price_minor as min_price_jpy,
                  max_price_minor as max_price_jpy, min_profit_minor as min_profit_jpy,
                  expected_profit_minor as expected_profit_jpy,
                  current_profit_minor as current_profit_jpy)
    from diffs
    where platform = 'base'
)

select * from final
