-- The platform's truth into listings_base for one shop (run inside one transaction with
-- insert_base.sql, settle_sent.sql, unmapped_base.sql and gone_base.sql). Quarantined
-- listings stay quarantined. A hidden item stays `listed` when invsync hid it (its last
-- confirmed push hid it: hidden_by_invsync; or the `sent` row this pull settles did:
-- hidden_by_push), so it is still fetched and restocked; an item hidden by hand is
-- `unlisted`, out of the sync.
-- `pushed` (BASE shows our own sent change) is recorded as a push: no drift.
update listings_base as l
set price_jpy = p.price_jpy,
    stock = p.stock,
    visible = p.visible,
    asin = p.asin,
    title = p.title,
    identifier = p.identifier,
    has_variations = p.has_variations,
    hidden_by_invsync = case
        when p.visible then false
        when c.hidden_by_push then true
        else l.hidden_by_invsync
    end,
    status = case
        when l.status = 'quarantined' then 'quarantined'
        when p.visible then 'listed'
        when c.hidden_by_push or l.hidden_by_invsync then 'listed'
        else 'unlisted'
    end,
    source = case when c.kind = 'pushed' then 'push' else 'pull' end,
    updated_at = case when c.kind = 'same' then l.updated_at else now() end,
    pulled_at = now(),
    drift_detected_at = case
        when c.kind = 'drifted' then now()
        when c.kind = 'pushed' then null
        else l.drift_detected_at
    end
from pulled as p
join classified as c on c.item_id = p.item_id
where l.account_id = $account_id
  and l.item_id = p.item_id
