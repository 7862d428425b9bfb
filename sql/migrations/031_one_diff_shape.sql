-- 031: one diff shape for every platform. diff_history holds the columns of
-- pipeline/schemas.py PricedDiff (sql/transform/diff.sql) plus the run and platform, replacing
-- 020's diff_base_history and diff_ebay_history; push_journal's prices take the diff's names,
-- so a diff row enters the journal as it is. Money is in integer minor units of `currency`: yen (JPY) on BASE, US
-- cents (USD) on eBay. PricedDiff enforces one row per (run_id, platform, account_id,
-- listing_key); no primary key here, since an index would triple the insert time.
create table diff_history (
    run_id                      varchar  not null,
    platform                    varchar  not null,   -- base | ebay
    account_id                  varchar  not null,
    listing_key                 varchar  not null,   -- BASE item_id as text, eBay sku
    asin                        varchar  not null,
    change_kind                 varchar  not null,   -- price_up | price_down | out_of_stock | restock
    currency                    varchar  not null,   -- JPY | USD
    old_price_minor             bigint   not null,   -- yen or cents
    new_price_minor             bigint   not null,
    old_quantity                bigint   not null,
    new_quantity                bigint   not null,
    old_visible                 boolean,             -- BASE only
    new_visible                 boolean,
    api                         varchar  not null,   -- items/edit | inventory | trading
    offer_id                    varchar,
    listing_id                  varchar,
    expected_profit_minor       bigint,              -- at new_price_minor; null going out of stock
    cost_jpy                    bigint,              -- Amazon landed price the rule used, JPY
    source_run_id               varchar  not null,
    source_fetched_at           timestamptz,
    source_status               varchar  not null,
    source_fallback_age_seconds double,              -- seconds
    held                        boolean  not null,
    hold_reason                 varchar,
    target_price_minor          bigint,              -- what the rule asked for, after min/max
    min_price_minor             bigint,
    max_price_minor             bigint,
    min_profit_minor            bigint   not null,
    fx_jpy_per_usd              varchar,             -- the exact decimal rate used (eBay), as text
    pricing_method              varchar  not null    -- markup | cost_plus
);

insert into diff_history by name
select
    run_id, platform, account_id, listing_key, asin, change_kind,
    'JPY' as currency,
    old_price_jpy as old_price_minor,
    new_price_jpy as new_price_minor,
    old_stock as old_quantity,
    new_stock as new_quantity,
    old_visible,
    new_visible,
    'items/edit' as api,
    expected_profit_jpy as expected_profit_minor,
    cost_jpy, source_run_id, source_fetched_at, source_status, source_fallback_age_seconds,
    held, hold_reason,
    target_price_jpy as target_price_minor,
    min_price_jpy as min_price_minor,
    max_price_jpy as max_price_minor,
    min_profit_jpy as min_profit_minor,
    pricing_method
from diff_base_history;

insert into diff_history by name
select
    run_id, platform, account_id, listing_key, asin, change_kind, currency,
    old_price_cents as old_price_minor,
    new_price_cents as new_price_minor,
    old_quantity,
    new_quantity,
    api, offer_id, listing_id,
    expected_profit_cents as expected_profit_minor,
    cost_jpy, source_run_id, source_fetched_at, source_status, source_fallback_age_seconds,
    held, hold_reason,
    target_price_cents as target_price_minor,
    min_price_cents as min_price_minor,
    max_price_cents as max_price_minor,
    min_profit_cents as min_profit_minor,
    fx_jpy_per_usd,
    pricing_method
from diff_ebay_history;

drop table diff_base_history;
drop table diff_ebay_history;

-- The journal's prices were always minor units of its `currency` (yen or cents); now named so.
alter table push_journal rename column old_price to old_price_minor;
alter table push_journal rename column new_price to new_price_minor;
