-- Upsert listings_ebay from `incoming_listings`; unchanged rows are left alone.
insert into listings_ebay (
    account_id, sku, offer_id, listing_id, asin, price_cents, currency, quantity,
    api, status, source, updated_at
)
select
    i.account_id, i.sku, i.offer_id, i.listing_id, i.asin, i.price_cents, i.currency,
    i.quantity, i.api, i.status, i.source, now()
from incoming_listings as i
left join listings_ebay as c
    on c.account_id = i.account_id and c.sku = i.sku
where c.sku is null
    or c.asin <> i.asin
    or c.offer_id is distinct from i.offer_id
    or c.listing_id is distinct from i.listing_id
    or c.price_cents <> i.price_cents
    or c.currency <> i.currency
    or c.quantity <> i.quantity
    or c.api <> i.api
    or c.status <> i.status
on conflict (account_id, sku) do update set
    asin = excluded.asin,
    offer_id = excluded.offer_id,
    listing_id = excluded.listing_id,
    price_cents = excluded.price_cents,
    currency = excluded.currency,
    quantity = excluded.quantity,
    api = excluded.api,
    status = excluded.status,
    source = excluded.source,
    updated_at = excluded.updated_at
