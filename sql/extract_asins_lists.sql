-- Phase 1 extract, the general form: every ASIN that a listed listing points at, on any
-- platform and account, once, with how many listings, which platforms and which accounts it
-- serves. pipeline/extract.py uses it only when there are more (platform, account) pairs than
-- sql/extract_asins.sql's 64-bit mask holds; both give the same rows.
with listed as (
    select asin, 'base' as platform, account_id
    from listings_base
    where status = 'listed'

    union all

    select asin, 'ebay' as platform, account_id
    from listings_ebay
    where status = 'listed'
),

final as (
    select
        asin,
        count(*)::bigint as listings,
        count(*) filter (where platform = 'base')::bigint as base_listings,
        count(*) filter (where platform = 'ebay')::bigint as ebay_listings,
        list_sort(list(distinct platform)) as platforms,
        list_sort(list(distinct account_id)) as accounts
    from listed
    group by asin
)

select * from final
order by asin
