-- Phase 1 extract: the (platform, account) pairs that have at least one listed listing.
-- pipeline/extract.py numbers them (bit 0, 1, …) for sql/extract_asins.sql.
with listed as (
    select distinct 'base' as platform, account_id
    from listings_base
    where status = 'listed'

    union

    select distinct 'ebay' as platform, account_id
    from listings_ebay
    where status = 'listed'
)

select platform, account_id
from listed
order by platform, account_id
