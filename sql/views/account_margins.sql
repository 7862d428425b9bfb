-- account_margins: margin and expected profit per account and run (listing_margins summed).
-- Profits are the sum over the account's listings of one sale each, in the account's
-- currency: current_profit_minor over the listings on sale when the run priced them,
-- expected_profit_minor after the run's decisions. margin = current profit / the prices of
-- the same listings, rounded to 4 places, halves away from zero. listings_below_cost counts
-- listing_margins.below_cost (see there).
with final as (
    select
        run_id,
        platform,
        any_value(priced_at) as priced_at,
        account_id,
        currency,
        any_value(fx_jpy_per_usd) as fx_jpy_per_usd,
        count(*) as listings,
        count(*) filter (where buyable) as buyable_listings,
        count(*) filter (where below_cost) as listings_below_cost,
        count(*) filter (where change_kind is not null) as changes,
        count(*) filter (where held) as held,
        cast(sum(current_profit_minor) filter (where buyable) as bigint) as current_profit_minor,
        cast(sum(expected_profit_minor) as bigint) as expected_profit_minor,
        cast(round(
            sum(current_profit_minor) filter (where buyable)
            / nullif(sum(price_minor) filter (where buyable and current_profit_minor is not null), 0),
            4
        ) as decimal(9, 4)) as margin
    from listing_margins
    group by run_id, platform, account_id, currency
)

select * from final
