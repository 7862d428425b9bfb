-- A row goes `sent` before its call: a crash after this line and before the result is
-- recorded leaves it `sent`, and the next load reads the platform before resending it.
update push_journal
set state = 'sent',
    attempts = attempts + 1,
    sent_at = now(),
    batch_id = $batch_id
where run_id = $run_id
  and platform = $platform
  and account_id = $account_id
  and listing_key = $listing_key
  and change_id = $change_id
