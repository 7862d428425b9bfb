-- Each pulled eBay SKU against our listing: new, drifted (price or quantity changed on eBay
-- since our last push or pull), changed (other fields, or an imported row's values), same.
with pulled_skus as (
    select * from pulled
),

ours as (
    select * from listings_ebay where account_id = $account_id
),

final as (
    select
        p.account_id,
        p.sku,
        case
            when o.sku is null then 'new'
            when o.source in ('push', 'pull')
                and (o.price_cents <> p.price_cents or o.quantity <> p.quantity) then 'drifted'
            when o.price_cents <> p.price_cents or o.quantity <> p.quantity
                or o.status = 'gone' or o.asin <> p.asin
                or o.offer_id is distinct from p.offer_id or o.api <> p.api
                or o.listing_id is distinct from coalesce(p.listing_id, o.listing_id)
                then 'changed'
            else 'same'
        end as kind
    from pulled_skus as p
    left join ours as o on o.sku = p.sku
)

select * from final
