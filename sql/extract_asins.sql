-- Phase 1 extract: every ASIN that a listed listing points at, on any platform and account,
-- once, with how many listings and, as a bit mask, which (platform, account) pairs it serves.
-- Reads listings_base, listings_ebay and the frame extract_accounts (platform, account_id,
-- bit: 0–63) that pipeline/extract.py registers from sql/extract_accounts.sql; Python turns
-- each distinct mask into the sorted platform and account lists. (Aggregating those lists
-- here, per ASIN, costs three times as long on a million listings: sql/extract_asins_lists.sql.)
-- Unordered: pipeline/extract.py sorts the frame by ASIN once the lists are joined.
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
        listed.asin,
        count(*)::bigint as listings,
        count(*) filter (where listed.platform = 'base')::bigint as base_listings,
        count(*) filter (where listed.platform = 'ebay')::bigint as ebay_listings,
        bit_or(cast(1 as ubigint) << pairs.bit) as account_mask
    from listed
    inner join extract_accounts as pairs
        on pairs.platform = listed.platform
        and pairs.account_id = listed.account_id
    group by listed.asin
)

select * from final
