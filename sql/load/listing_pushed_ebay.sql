-- A confirmed push becomes the local truth, so the next transform diffs against it.
update listings_ebay
set price_cents = $price,
    quantity = $quantity,
    offer_id = coalesce($offer_id, offer_id),
    updated_at = now(),
    source = 'push',
    drift_detected_at = null
where account_id = $account_id
  and sku = $sku
