-- The platform's truth into listings_base for one shop (run inside one transaction with
-- insert_base.sql and gone_base.sql). Quarantined listings stay quarantined.
update listings_base as l
set price_jpy = p.price_jpy,
    stock = p.stock,
    visible = p.visible,
    asin = p.asin,
    title = p.title,
    identifier = p.identifier,
    has_variations = p.has_variations,
    status = case when l.status = 'quarantined' then 'quarantined'
                  when p.visible then 'listed' else 'unlisted' end,
    source = 'pull',
    updated_at = case when c.kind = 'same' then l.updated_at else now() end,
    pulled_at = now(),
    drift_detected_at = case when c.kind = 'drifted' then now() else l.drift_detected_at end
from pulled as p
join classified as c on c.item_id = p.item_id
where l.account_id = $account_id
  and l.item_id = p.item_id
