-- The outcome of one row: ok | failed | quarantined | skipped | pending (not processed).
update push_journal
set state = $state,
    http_status = $http_status,
    error_code = $error_code,
    error_message = $error_message,
    offer_id = coalesce($offer_id, offer_id),
    finished_at = now()
where run_id = $run_id
  and platform = $platform
  and account_id = $account_id
  and listing_key = $listing_key
  and change_id = $change_id
