-- A confirmed push becomes the local truth, so the next transform diffs against it.
update listings_ebay
set price_cents = $price,
    quantity = $quantity,
    offer_id = coalesce($offer_id, offer_id),
    updated_at = now(),
    source = 'push',
    -- a protective pause or raise of a held listing is not the person's decision: a
    -- listing changed by hand stays held for them (the chaos loop found the restock)
    drift_detected_at = case when $protect then drift_detected_at end
where account_id = $account_id
  and sku = $sku
