-- How each row of `incoming_listings` relates to listings_ebay: (kind, count).
with incoming as (
    select * from incoming_listings
),

current_rows as (
    select * from listings_ebay
),

classified as (
    select
        case
            when c.sku is null then 'inserted'
            when c.asin = i.asin
                and c.offer_id is not distinct from i.offer_id
                and c.listing_id is not distinct from i.listing_id
                and c.price_cents = i.price_cents
                and c.currency = i.currency
                and c.quantity = i.quantity
                and c.api = i.api
                and c.status = i.status
                then 'unchanged'
            else 'updated'
        end as kind
    from incoming as i
    left join current_rows as c
        on c.account_id = i.account_id and c.sku = i.sku
),

final as (
    select kind, count(*) as n from classified group by kind
)

select * from final
