-- `invsync listings show`: the listings that left the sync or are changed by hand, one row
-- each: kind (gone | unmapped | drifted | unlisted), where it is, its ASIN and title, why
-- (detail) and since when. $kinds: the kinds asked for; $platform, $account: null for all.
with listings as (
    select
        'base' as platform, account_id, cast(item_id as varchar) as listing_key, asin, title,
        status, drift_detected_at, updated_at
    from listings_base

    union all

    select
        'ebay' as platform, account_id, sku as listing_key, asin, title,
        status, drift_detected_at, updated_at
    from listings_ebay
),

found as (
    select
        'gone' as kind, platform, account_id, listing_key, asin, title,
        'no longer listed on the platform' as detail, updated_at as since
    from listings
    where status = 'gone'

    union all

    select
        'unmapped' as kind, u.platform, u.account_id, u.listing_key, l.asin,
        coalesce(u.title, l.title) as title, u.reason as detail, u.seen_at as since
    from listings_unmapped as u
    left join listings as l using (platform, account_id, listing_key)

    union all

    select
        'drifted' as kind, platform, account_id, listing_key, asin, title,
        'changed by hand since our last push or pull; review holds its changes' as detail,
        drift_detected_at as since
    from listings
    where status = 'listed' and drift_detected_at is not null

    union all

    select
        'unlisted' as kind, platform, account_id, listing_key, asin, title,
        'hidden or withdrawn by hand; out of the sync until shown again' as detail,
        updated_at as since
    from listings
    where status = 'unlisted'
)

select kind, platform, account_id, listing_key, asin, title, detail, since
from found
where list_contains($kinds, kind)
  and (cast($platform as varchar) is null or platform = $platform)
  and (cast($account as varchar) is null or account_id = $account)
order by kind, platform, account_id, listing_key
