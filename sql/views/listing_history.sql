-- listing_history: our own listings over time. One row per platform listing and run that
-- priced it, with its price, stock and visibility as they stood when the run priced it
-- (before that run's push) and what the run decided for it (change_kind null: no change).
-- priced_at: when the run priced (runs.priced_at; started_at for runs that did not record it).
-- Prices in integer minor units of `currency`: yen (JPY) on BASE, US cents (USD) on eBay.
with final as (
    select
        l.run_id,
        l.platform,
        coalesce(r.priced_at, r.started_at) as priced_at,
        l.account_id,
        l.listing_key,
        l.asin,
        l.item_id,
        l.sku,
        l.currency,
        l.price_minor,
        l.quantity,
        l.visible,
        l.quantity > 0 and coalesce(l.visible, true) as buyable,
        l.drifted,
        l.change_kind,
        l.new_price_minor,
        l.new_quantity,
        l.new_visible,
        l.held,
        l.hold_reason,
        l.change_id
    from listing_rows as l
    left join runs as r on r.run_id = l.run_id
)

select * from final
