-- quarantined (gone from eBay) or drift seen while resuming.
update listings_ebay
set status = coalesce($status, status),
    drift_detected_at = case when $drifted then now() else drift_detected_at end,
    updated_at = now()
where account_id = $account_id
  and sku = $sku
