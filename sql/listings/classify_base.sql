-- How each row of the registered frame `incoming_listings` relates to listings_base:
-- inserted (new key), updated (a value differs) or unchanged. Returns (kind, count).
with incoming as (
    select * from incoming_listings
),

current_rows as (
    select * from listings_base
),

classified as (
    select
        case
            when c.item_id is null then 'inserted'
            when c.asin = i.asin
                and c.price_jpy = i.price_jpy
                and c.stock = i.stock
                and c.visible = i.visible
                and c.status = i.status
                and (i.title is null or i.title is not distinct from c.title)
                and (i.identifier is null or i.identifier is not distinct from c.identifier)
                then 'unchanged'
            else 'updated'
        end as kind
    from incoming as i
    left join current_rows as c
        on c.account_id = i.account_id and c.item_id = i.item_id
),

final as (
    select kind, count(*) as n from classified group by kind
)

select * from final
