-- A confirmed push becomes the local truth, so the next transform diffs against it.
update listings_base
set price_jpy = $price,
    stock = $quantity,
    visible = coalesce($visible, visible),
    updated_at = now(),
    source = 'push',
    drift_detected_at = null
where account_id = $account_id
  and item_id = $item_id
