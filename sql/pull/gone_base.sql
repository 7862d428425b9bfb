-- Listings of the shop that BASE no longer lists: gone (returns their keys).
update listings_base
set status = 'gone', updated_at = now()
where account_id = $account_id
  and status <> 'gone'
  and item_id not in (select item_id from pulled)
returning item_id
