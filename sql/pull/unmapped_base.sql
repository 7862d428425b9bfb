-- Our rows of BASE items the pull returned but could not map (listings_unmapped for this
-- shop): kept, with status `unmapped`, out of extract and transform until a pull maps them
-- again. Quarantined rows stay quarantined. Returns their keys.
update listings_base
set status = 'unmapped', updated_at = now(), pulled_at = now()
where account_id = $account_id
  and status not in ('unmapped', 'quarantined')
  and cast(item_id as varchar) in (
      select listing_key from listings_unmapped
      where platform = 'base' and account_id = $account_id
  )
returning item_id
