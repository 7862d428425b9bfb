-- Every approved diff row enters the journal as `pending` before any call; a row already
-- journaled for this run (a resumed load) keeps its state.
insert into push_journal (
    run_id, platform, account_id, listing_key, asin, currency,
    old_price, new_price, old_quantity, new_quantity, old_visible, new_visible,
    state, attempts, created_at, api, offer_id, listing_id
)
select
    run_id, platform, account_id, listing_key, asin, currency,
    old_price, new_price, old_quantity, new_quantity, old_visible, new_visible,
    'pending', 0, now(), api, offer_id, listing_id
from incoming
on conflict do nothing
