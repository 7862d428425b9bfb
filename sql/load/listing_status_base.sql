-- quarantined (deleted on BASE, confirmed by items/detail) or drift seen while resuming.
update listings_base
set status = coalesce($status, status),
    drift_detected_at = case when $drifted then now() else drift_detected_at end,
    updated_at = now()
where account_id = $account_id
  and item_id = $item_id
