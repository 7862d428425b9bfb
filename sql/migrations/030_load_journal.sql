-- 030 (load, issue 6): what the loader needs beyond 001's push_journal.

-- drift_detected_at on both listing tables comes from 022 (Phase 2), set by
-- `invsync listings pull` and cleared by a confirmed push.

-- The journal carries everything a resumed load needs, so a resume never re-reads a diff.
alter table push_journal add column if not exists api varchar;         -- items/edit | inventory | trading
alter table push_journal add column if not exists offer_id varchar;    -- eBay offerId
alter table push_journal add column if not exists listing_id varchar;  -- eBay ItemID (Trading)
alter table push_journal add column if not exists batch_id varchar;    -- the call a row went out in

-- Calls made per platform account and window (an hour for BASE's 5,000/h, a day for its
-- 100,000/day), counted before each call so a crash never under-counts.
create table if not exists api_call_windows (
    platform     varchar  not null,            -- base | ebay
    account_id   varchar  not null,
    window_kind  varchar  not null,            -- hour | day
    window_index bigint   not null,            -- hours or days since the epoch (platform time;
                                               -- the sandbox's runs time_scale times faster)
    calls        integer  not null,
    primary key (platform, account_id, window_kind, window_index)
);
