-- Each pulled eBay SKU against our listing: new; pushed (eBay shows the new values of the
-- listing's latest `sent` journal row: our own change, whose answer a crash lost — not
-- drift); drifted (price or quantity changed on eBay since our last push or pull); changed
-- (other fields, an imported row's values, or a gone or unmapped listing back); same.
-- pushed rows carry the journal row's key (sent_run_id, sent_change_id) to settle it `ok`;
-- hidden_by_hand: a listed SKU whose offer is now a draft only (withdrawn by hand).
with pulled_skus as (
    select * from pulled
),

ours as (
    select * from listings_ebay where account_id = $account_id
),

sent_rows as (
    select
        listing_key as sku,
        run_id,
        change_id,
        new_price_minor,
        new_quantity,
        row_number() over (partition by listing_key order by sent_at desc, run_id desc) as newest
    from push_journal
    where platform = 'ebay'
      and account_id = $account_id
      and state = 'sent'
),

latest_sent as (
    select * from sent_rows where newest = 1
),

matched as (
    select
        p.*,
        o.sku is not null as known,
        o.source,
        o.price_cents as our_price,
        o.quantity as our_quantity,
        o.status as our_status,
        o.asin as our_asin,
        o.offer_id as our_offer_id,
        o.api as our_api,
        o.listing_id as our_listing_id,
        s.run_id as sent_run_id,
        s.change_id as sent_change_id,
        s.sku is not null
            and p.price_cents = s.new_price_minor
            and p.quantity = s.new_quantity as shows_sent
    from pulled_skus as p
    left join ours as o on o.sku = p.sku
    left join latest_sent as s on s.sku = p.sku
),

final as (
    select
        account_id,
        sku,
        case
            when not known then 'new'
            when shows_sent then 'pushed'
            when source in ('push', 'pull')
                and (our_price <> price_cents or our_quantity <> quantity) then 'drifted'
            when our_price <> price_cents or our_quantity <> quantity
                or our_status in ('gone', 'unmapped') or our_asin <> asin
                or our_offer_id is distinct from offer_id or our_api <> api
                or our_listing_id is distinct from coalesce(listing_id, our_listing_id)
                then 'changed'
            else 'same'
        end as kind,
        sku as listing_key,
        case when known and shows_sent then sent_run_id end as sent_run_id,
        case when known and shows_sent then sent_change_id end as sent_change_id,
        false as hidden_by_push,  -- eBay has no hidden state
        -- listed, now only a draft offer (withdrawn by hand): it leaves the sync
        coalesce(known and our_status = 'listed' and status = 'unlisted', false)
            as hidden_by_hand
    from matched
)

select * from final
