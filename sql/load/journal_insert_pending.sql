-- Every row a load sends (pipeline/schemas.py Diff, with the run_id and platform of its
-- path, its change_id, and action: change or protect) enters the journal as `pending` before
-- any call, under the diff's own column names; a change already journaled for this run (a
-- resumed load) keeps its state.
insert into push_journal (
    run_id, platform, account_id, listing_key, change_id, action, reason, asin, currency,
    old_price_minor, new_price_minor, old_quantity, new_quantity, old_visible, new_visible,
    api, offer_id, listing_id, state, attempts, created_at
)
select
    run_id, platform, account_id, listing_key, change_id, action, reason, asin, currency,
    old_price_minor, new_price_minor, old_quantity, new_quantity, old_visible, new_visible,
    api, offer_id, listing_id, 'pending', 0, now()
from incoming
on conflict do nothing
