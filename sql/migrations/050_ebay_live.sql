-- 050 (issue 13): what live eBay showed a load, kept with the run.
--
-- The seller's Out-of-Stock Control preference, read with Trading GetUserPreferences the first
-- time a load of the run has a quantity-0 row for the account: with it off, eBay ENDS a
-- listing revised to quantity 0, so the load does not send those rows (docs/load.md).
create table if not exists ebay_run_preferences (
    run_id               varchar   not null,
    account_id           varchar   not null,
    out_of_stock_control boolean   not null,  -- true: quantity 0 keeps the listing alive
    checked_at           timestamp not null,  -- when GetUserPreferences answered (UTC)
    primary key (run_id, account_id)
);
