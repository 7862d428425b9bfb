-- 052 (issue 14): nothing leaves the sync silently.
--
-- listings_unmapped: every listing a platform returned that the pull could not map (no ASIN
-- in the BASE item's asin_field or the eBay SKU, no usable price, stock or quantity), with its
-- id and why, so `invsync listings show --unmapped` lists them. Replaced per account pull, in
-- the pull's transaction. Our own row of such a listing, if any, is kept with status
-- `unmapped` (out of extract and transform); a later pull that maps it again brings it back.
create table if not exists listings_unmapped (
    platform     varchar     not null,   -- base | ebay
    account_id   varchar     not null,
    listing_key  varchar     not null,   -- BASE item_id as text, eBay SKU (ItemID when no SKU)
    reason       varchar     not null,   -- no_asin | no_sku | no_offer | no_price | no_stock | no_quantity | not_fixed_price | not_usd
    title        varchar,
    seen_at      timestamptz not null,   -- the pull that saw it
    primary key (platform, account_id, listing_key)
);

-- hidden_by_invsync: the BASE item is hidden (visible 0) because invsync's last confirmed push
-- hid it (out_of_stock_action = "hide", or an item with variations taken out of stock). Such
-- an item stays `listed`, so it is fetched and restocked when Amazon can supply again; an item
-- hidden by hand stays `unlisted` (the seller's choice). Set by sql/load/listing_pushed_base.sql
-- and by the pull when it settles a `sent` journal row; cleared when the item is seen visible.
alter table listings_base add column if not exists hidden_by_invsync boolean default false;
update listings_base set hidden_by_invsync = false where hidden_by_invsync is null;

-- Items a confirmed hide took out of the sync before this migration (a pull made them
-- `unlisted`): back in, as the latest confirmed push for them says hidden.
update listings_base as l
set hidden_by_invsync = true,
    status = 'listed'
from (
    select account_id, listing_key, arg_max(new_visible, finished_at) as new_visible
    from push_journal
    where platform = 'base' and state = 'ok' and new_visible is not null
    group by account_id, listing_key
) as latest
where latest.account_id = l.account_id
  and latest.listing_key = cast(l.item_id as varchar)
  and latest.new_visible = false
  and l.status = 'unlisted'
  and not l.visible;
