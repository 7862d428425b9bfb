-- 020: the warehouse history of every run's diffs (issue 5), one table per platform, plus the
-- per-platform counts the review breaker judges. Columns mirror pipeline/schemas.py
-- PricedDiffBase / PricedDiffEbay, which also enforce one row per (run_id, account_id,
-- listing_key); no primary key here, since an index would triple the insert time. Money is integer yen (*_jpy) or integer US cents (*_cents).
create table diff_base_history (
    run_id                      varchar  not null,
    platform                    varchar  not null,   -- always 'base'
    account_id                  varchar  not null,
    listing_key                 varchar  not null,   -- item_id as text
    item_id                     bigint   not null,
    asin                        varchar  not null,
    change_kind                 varchar  not null,   -- price_up | price_down | out_of_stock | restock
    old_price_jpy               bigint   not null,
    new_price_jpy               bigint   not null,
    old_stock                   integer  not null,
    new_stock                   integer  not null,
    old_visible                 boolean  not null,
    new_visible                 boolean  not null,
    target_price_jpy            bigint,              -- what the rule asked for, after min/max
    min_price_jpy               bigint,
    max_price_jpy               bigint,
    min_profit_jpy              bigint   not null,
    expected_profit_jpy         bigint,              -- at new_price_jpy; null when going out of stock
    cost_jpy                    bigint,              -- Amazon landed price the rule used
    pricing_method              varchar  not null,   -- markup | cost_plus
    source_run_id               varchar  not null,
    source_fetched_at           timestamptz,
    source_status               varchar  not null,
    source_fallback_age_seconds double,              -- seconds
    held                        boolean  not null,
    hold_reason                 varchar
);

create table diff_ebay_history (
    run_id                      varchar  not null,
    platform                    varchar  not null,   -- always 'ebay'
    account_id                  varchar  not null,
    listing_key                 varchar  not null,   -- sku
    sku                         varchar  not null,
    offer_id                    varchar,
    listing_id                  varchar,
    api                         varchar  not null,   -- inventory | trading
    currency                    varchar  not null,   -- USD
    asin                        varchar  not null,
    change_kind                 varchar  not null,
    old_price_cents             bigint   not null,
    new_price_cents             bigint   not null,
    old_quantity                integer  not null,
    new_quantity                integer  not null,
    target_price_cents          bigint,
    min_price_cents             bigint,
    max_price_cents             bigint,
    min_profit_cents            bigint   not null,
    expected_profit_cents       bigint,
    cost_jpy                    bigint,
    fx_jpy_per_usd              varchar,             -- the exact decimal rate used, as text
    pricing_method              varchar  not null,
    source_run_id               varchar  not null,
    source_fetched_at           timestamptz,
    source_status               varchar  not null,
    source_fallback_age_seconds double,
    held                        boolean  not null,
    hold_reason                 varchar
);

-- What the breaker judges, counted by transform over every listed listing of the platform.
create table transform_platform_stats (
    run_id              varchar not null,
    platform            varchar not null,
    listings            integer not null,   -- listed listings of configured accounts
    source_in_stock     integer not null,   -- Amazon says buyable (ok or fallback)
    source_out_of_stock integer not null,   -- no_offer, filtered_out, or in_stock = false
    source_doubtful     integer not null,   -- api_error or unknown
    source_missing      integer not null,   -- ASIN not in the snapshot, or invalid_asin
    snapshot_asins      integer not null,   -- distinct ASINs in the run's snapshot
    extracted_asins     integer,            -- runs.unique_asins when extract recorded it
    diff_rows           integer not null,
    held_rows           integer not null,
    as_of               timestamptz not null,
    primary key (run_id, platform)
);
