-- Upsert listings_base from `incoming_listings`: new keys are inserted, changed rows
-- updated (updated_at moves only for them), unchanged rows are left alone.
insert into listings_base (
    account_id, item_id, asin, price_jpy, stock, visible, status,
    title, identifier, source, updated_at
)
select
    i.account_id, i.item_id, i.asin, i.price_jpy, i.stock, i.visible, i.status,
    i.title, i.identifier, i.source, now()
from incoming_listings as i
left join listings_base as c
    on c.account_id = i.account_id and c.item_id = i.item_id
where c.item_id is null
    or c.asin <> i.asin
    or c.price_jpy <> i.price_jpy
    or c.stock <> i.stock
    or c.visible <> i.visible
    or c.status <> i.status
    or (i.title is not null and i.title is distinct from c.title)
    or (i.identifier is not null and i.identifier is distinct from c.identifier)
on conflict (account_id, item_id) do update set
    asin = excluded.asin,
    price_jpy = excluded.price_jpy,
    stock = excluded.stock,
    visible = excluded.visible,
    status = excluded.status,
    title = coalesce(excluded.title, listings_base.title),
    identifier = coalesce(excluded.identifier, listings_base.identifier),
    source = excluded.source,
    updated_at = excluded.updated_at
