-- Each pulled BASE item against our listing: new, drifted (price or stock changed on BASE
-- since our last push or pull), changed (other fields, or an imported row's values), same.
with pulled_items as (
    select * from pulled
),

ours as (
    select * from listings_base where account_id = $account_id
),

final as (
    select
        p.account_id,
        p.item_id,
        case
            when o.item_id is null then 'new'
            when o.source in ('push', 'pull')
                and (o.price_jpy <> p.price_jpy or o.stock <> p.stock) then 'drifted'
            when o.price_jpy <> p.price_jpy or o.stock <> p.stock or o.visible <> p.visible
                or o.status = 'gone' or o.asin <> p.asin
                or o.has_variations is distinct from p.has_variations then 'changed'
            else 'same'
        end as kind
    from pulled_items as p
    left join ours as o on o.item_id = p.item_id
)

select * from final
