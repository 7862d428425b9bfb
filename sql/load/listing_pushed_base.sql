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
    -- a protective pause or raise of a held listing is not the person's decision: a
    -- listing changed by hand stays held for them (the chaos loop found the restock)
    drift_detected_at = case when $protect then drift_detected_at end
where account_id = $account_id
  and item_id = $item_id
