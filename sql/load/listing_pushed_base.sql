-- A confirmed push becomes the local truth, so the next transform diffs against it. A push
-- that leaves the item hidden (visible 0) marks it hidden by invsync: the next pull keeps it
-- `listed` (migration 052), so a later restock can show it again.
update listings_base
set price_jpy = $price,
    stock = $quantity,
    visible = coalesce($visible, visible),
    hidden_by_invsync = not coalesce($visible, visible),
    updated_at = now(),
    source = 'push',
    drift_detected_at = null
where account_id = $account_id
  and item_id = $item_id
