-- 001: the master tables of design §3. Money is integer yen or integer cents.
create table listings_base (
    account_id   varchar  not null,
    item_id      bigint   not null,
    asin         varchar  not null,
    price_jpy    bigint   not null,          -- JPY, tax included, as BASE shows it
    stock        integer  not null,
    visible      boolean  not null,
    status       varchar  not null,          -- listed | unlisted | quarantined | gone
    title        varchar,
    identifier   varchar,                    -- BASE 商品コード, where pulled listings carry the ASIN
    source       varchar  not null,          -- import | pull | push
    updated_at   timestamptz not null,       -- last change we made or saw
    pulled_at    timestamptz,                -- last time the platform was read
    primary key (account_id, item_id)
);

create table listings_ebay (
    account_id   varchar  not null,
    sku          varchar  not null,
    offer_id     varchar,
    listing_id   varchar,
    asin         varchar  not null,
    price_cents  bigint   not null,          -- integer cents of `currency`
    currency     varchar  not null,
    quantity     integer  not null,
    api          varchar  not null,          -- inventory | trading
    status       varchar  not null,
    source       varchar  not null,
    updated_at   timestamptz not null,
    pulled_at    timestamptz,
    primary key (account_id, sku)
);

create table runs (
    run_id            varchar primary key,
    command           varchar not null,      -- sync | fetch | transform | load | ...
    mode              varchar not null,      -- sandbox | live
    config_hash       varchar,
    operation         varchar,               -- item_offers | competitive_pricing
    started_at        timestamptz not null,
    finished_at       timestamptz,
    extract_seconds   double,
    fetch_seconds     double,
    transform_seconds double,
    review_seconds    double,
    load_seconds      double,
    listings          integer,
    unique_asins      integer,
    invalid_asins     integer,
    spapi_calls       integer,
    spapi_429s        integer,
    spapi_retries     integer,
    fetched_ok        integer,
    fallbacks         integer,
    unknowns          integer,
    quota_floor_seconds double,              -- (calls - burst) / rate for this run's calls
    diffs             integer,
    holds             integer,
    pushes            integer,
    push_failures     integer,
    outcome           varchar not null,      -- running | ok | held | failed | interrupted
    message           varchar
);

create table push_journal (
    run_id        varchar not null,
    platform      varchar not null,          -- base | ebay
    account_id    varchar not null,
    listing_key   varchar not null,          -- BASE item_id, eBay sku
    asin          varchar,
    currency      varchar,                   -- JPY | USD
    old_price     bigint,                    -- integer yen or cents
    new_price     bigint,
    old_quantity  integer,
    new_quantity  integer,
    old_visible   boolean,
    new_visible   boolean,
    state         varchar not null,          -- pending | sent | ok | failed | quarantined | skipped
    attempts      integer not null default 0,
    http_status   integer,
    error_code    varchar,
    error_message varchar,
    created_at    timestamptz not null,
    sent_at       timestamptz,
    finished_at   timestamptz,
    primary key (run_id, platform, account_id, listing_key)
);
