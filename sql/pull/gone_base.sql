-- Listings of the shop that BASE no longer lists: gone (returns their keys). Judged only from
-- the ids BASE returned: `present` holds every item id of the shop's pull, mapped to an ASIN
-- or not, so an item the pull could not map is unmapped (unmapped_base.sql), never gone.
update listings_base
set status = 'gone', updated_at = now()
where account_id = $account_id
  and status <> 'gone'
  and item_id not in (select item_id from present)
returning item_id
