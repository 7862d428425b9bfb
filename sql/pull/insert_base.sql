insert into listings_base (
    account_id, item_id, asin, price_jpy, stock, visible, status, title, identifier,
    has_variations, source, updated_at, pulled_at
)
select
    p.account_id, p.item_id, p.asin, p.price_jpy, p.stock, p.visible,
    case when p.visible then 'listed' else 'unlisted' end,
    p.title, p.identifier, p.has_variations, 'pull', now(), now()
from pulled as p
join classified as c on c.item_id = p.item_id
where c.kind = 'new'
