-- Each pulled BASE item against our listing: new; pushed (BASE shows the new values of the
-- listing's latest `sent` journal row: our own change, whose answer a crash lost — not
-- drift); drifted (price or stock changed on BASE since our last push or pull); changed
-- (other fields, an imported row's values, or a gone or unmapped listing back); same.
-- pushed rows carry the journal row's key (sent_run_id, sent_change_id) to settle it `ok`,
-- and hidden_by_push when that row hid the item (it stays in the sync, hidden by us);
-- hidden_by_hand: a listed item now hidden that invsync did not hide (it becomes unlisted).
with pulled_items as (
    select * from pulled
),

ours as (
    select * from listings_base where account_id = $account_id
),

sent_rows as (
    select
        cast(listing_key as bigint) as item_id,
        run_id,
        change_id,
        new_price_minor,
        new_quantity,
        old_visible,
        new_visible,
        row_number() over (partition by listing_key order by sent_at desc, run_id desc) as newest
    from push_journal
    where platform = 'base'
      and account_id = $account_id
      and state = 'sent'
),

latest_sent as (
    select * from sent_rows where newest = 1
),

matched as (
    select
        p.*,
        o.item_id is not null as known,
        o.source,
        o.price_jpy as our_price,
        o.stock as our_stock,
        o.visible as our_visible,
        o.status as our_status,
        o.asin as our_asin,
        o.has_variations as our_variations,
        coalesce(o.hidden_by_invsync, false) as our_hiding,
        s.run_id as sent_run_id,
        s.change_id as sent_change_id,
        -- BASE shows what the sent row asked for: its price, its stock (not for an item with
        -- variations, whose stock BASE sets) and its visibility where it changed it
        s.item_id is not null
            and p.price_jpy = s.new_price_minor
            and (p.has_variations or p.stock = s.new_quantity)
            and (s.new_visible is null or s.new_visible is not distinct from s.old_visible
                or p.visible = s.new_visible) as shows_sent,
        -- the sent row hid it: hidden, or (variations) taken out of stock, which hides
        coalesce(s.new_visible = false or (p.has_variations and s.new_quantity = 0), false)
            as sent_hides
    from pulled_items as p
    left join ours as o on o.item_id = p.item_id
    left join latest_sent as s on s.item_id = p.item_id
),

final as (
    select
        account_id,
        item_id,
        case
            when not known then 'new'
            when shows_sent then 'pushed'
            when source in ('push', 'pull')
                and (our_price <> price_jpy or our_stock <> stock) then 'drifted'
            when our_price <> price_jpy or our_stock <> stock or our_visible <> visible
                or our_status in ('gone', 'unmapped') or our_asin <> asin
                or our_variations is distinct from has_variations then 'changed'
            else 'same'
        end as kind,
        cast(item_id as varchar) as listing_key,
        case when known and shows_sent then sent_run_id end as sent_run_id,
        case when known and shows_sent then sent_change_id end as sent_change_id,
        coalesce(known and shows_sent and sent_hides, false) as hidden_by_push,
        -- listed, now hidden, and not by us: the seller's choice, it leaves the sync
        coalesce(known and our_status = 'listed' and not visible and not our_hiding
            and not (shows_sent and sent_hides), false) as hidden_by_hand
    from matched
)

select * from final
