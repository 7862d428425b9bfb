-- The platform's truth into listings_ebay for one account (one transaction with
-- insert_ebay.sql, settle_sent.sql, unmapped_ebay.sql and gone_ebay.sql). Quarantined
-- listings stay quarantined. `pushed` (eBay shows our own sent change) is recorded as a
-- push: no drift.
update listings_ebay as l
set price_cents = p.price_cents,
    currency = p.currency,
    quantity = p.quantity,
    asin = p.asin,
    offer_id = p.offer_id,
    listing_id = coalesce(p.listing_id, l.listing_id),
    api = p.api,  -- inventory wins: the pull classified it
    status = case when l.status = 'quarantined' then 'quarantined' else p.status end,
    source = case when c.kind = 'pushed' then 'push' else 'pull' end,
    updated_at = case when c.kind = 'same' then l.updated_at else now() end,
    pulled_at = now(),
    drift_detected_at = case
        when c.kind = 'drifted' then now()
        when c.kind = 'pushed' then null
        else l.drift_detected_at
    end
from pulled as p
join classified as c on c.sku = p.sku
where l.account_id = $account_id
  and l.sku = p.sku
