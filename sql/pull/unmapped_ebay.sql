-- Our rows of eBay SKUs the pull returned but could not map (listings_unmapped for this
-- account): kept, with status `unmapped`, out of extract and transform until a pull maps
-- them again. Quarantined rows stay quarantined. Returns their SKUs.
update listings_ebay
set status = 'unmapped', updated_at = now(), pulled_at = now()
where account_id = $account_id
  and status not in ('unmapped', 'quarantined')
  and sku in (
      select listing_key from listings_unmapped
      where platform = 'ebay' and account_id = $account_id
  )
returning sku
