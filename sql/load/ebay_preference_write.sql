-- What GetUserPreferences answered for an eBay account in this run; a later load of the run
-- that asked again (the preference was off) keeps the newer answer.
insert into ebay_run_preferences (run_id, account_id, out_of_stock_control, checked_at)
values ($run_id, $account_id, $out_of_stock_control, now())
on conflict do update set
    out_of_stock_control = excluded.out_of_stock_control,
    checked_at = excluded.checked_at
