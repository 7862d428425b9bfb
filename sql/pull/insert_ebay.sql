insert into listings_ebay (
    account_id, sku, offer_id, listing_id, asin, price_cents, currency, quantity, api,
    status, source, updated_at, pulled_at
)
select
    p.account_id, p.sku, p.offer_id, p.listing_id, p.asin, p.price_cents, p.currency,
    p.quantity, p.api, p.status, 'pull', now(), now()
from pulled as p
join classified as c on c.sku = p.sku
where c.kind = 'new'
