-- diff_ebay: eBay's changes from the diffs view, in eBay's names and units: integer US cents
-- (*_cents; cost_jpy stays yen), sku, quantity and the API a listing is revised through.
-- One row per SKU and run; BASE's visibility columns and the platform left out.
with final as (
    select
        run_id,
        account_id,
        listing_key as sku,
        * exclude (run_id, account_id, listing_key, platform, old_visible, new_visible)
          rename (old_price_minor as old_price_cents, new_price_minor as new_price_cents,
                  target_price_minor as target_price_cents, min_price_minor as min_price_cents,
                  max_price_minor as max_price_cents, min_profit_minor as min_profit_cents,
                  expected_profit_minor as expected_profit_cents,
                  current_profit_minor as current_profit_cents)
    from diffs
    where platform = 'ebay'
)

select * from final
