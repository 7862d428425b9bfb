-- pushes: every intended change and what became of it (the push journal), one row per
-- change (or protection) a run journaled for a listing.
with final as (
    select
        run_id,
        platform,
        account_id,
        listing_key,
        change_id,
        action,           -- change | protect (taken while a held row waited)
        reason,           -- why a protect row was sent
        asin,
        currency,
        old_price_minor,
        new_price_minor,
        old_quantity,
        new_quantity,
        old_visible,      -- BASE only
        new_visible,
        api,              -- items/edit | inventory | trading
        state,            -- pending | sent | ok | failed | quarantined | skipped | void
        attempts,
        http_status,
        error_code,
        error_message,
        created_at,
        sent_at,
        finished_at
    from push_journal
)

select * from final
