-- The calls made so far in one window of a platform account (one run at a time writes).
insert into api_call_windows (platform, account_id, window_kind, window_index, calls)
values ($platform, $account_id, $window_kind, $window_index, $calls)
on conflict do update set calls = excluded.calls
