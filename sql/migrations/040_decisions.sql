-- 040 (issue 12): decisions bound to changes, protection while held, titles for review.
--
-- A person's decisions live in decisions.sqlite beside the warehouse (pipeline/decisions.py),
-- bound to a change_id, so the run-bound approvals of 021 go: a new transform no longer has
-- to delete them, since a decision can only ever match the exact change it was made on.
drop table if exists review_approvals;

-- eBay titles, for the review workbench (BASE's listings already carry theirs).
alter table listings_ebay add column if not exists title varchar;

-- The diff's new columns (pipeline/schemas.py Diff).
alter table diff_history add column if not exists change_id varchar;
alter table diff_history add column if not exists title varchar;
alter table diff_history add column if not exists current_profit_minor bigint;
alter table diff_history add column if not exists protection varchar;        -- raise | pause
alter table diff_history add column if not exists protection_reason varchar;

-- The journal is keyed by the change as well as the listing: one run may pause a listing
-- while its held change waits and later push the approved change, and a re-transform
-- voids the pending rows of changes its new diff no longer has (state `void`) and journals
-- the new ones beside them. DuckDB cannot change a primary key in place: rebuild.
create table push_journal_040 (
    run_id          varchar not null,
    platform        varchar not null,          -- base | ebay
    account_id      varchar not null,
    listing_key     varchar not null,          -- BASE item_id, eBay sku
    change_id       varchar not null,          -- the diff row's change_id (a pause: its own)
    action          varchar not null default 'change',  -- change | protect
    reason          varchar,                   -- why a protect row was sent
    asin            varchar,
    currency        varchar,                   -- JPY | USD
    old_price_minor bigint,                    -- integer yen or cents
    new_price_minor bigint,
    old_quantity    integer,
    new_quantity    integer,
    old_visible     boolean,
    new_visible     boolean,
    state           varchar not null,          -- pending | sent | ok | failed | quarantined | skipped | void
    attempts        integer not null default 0,
    http_status     integer,
    error_code      varchar,
    error_message   varchar,
    created_at      timestamptz not null,
    sent_at         timestamptz,
    finished_at     timestamptz,
    api             varchar,
    offer_id        varchar,
    listing_id      varchar,
    batch_id        varchar,
    primary key (run_id, platform, account_id, listing_key, change_id)
);

insert into push_journal_040 by name
select
    * exclude (old_price_minor, new_price_minor),
    old_price_minor,
    new_price_minor,
    'journal-before-040' as change_id,
    'change' as action
from push_journal;

drop table push_journal;
alter table push_journal_040 rename to push_journal;
