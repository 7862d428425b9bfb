-- listing_margins: margin and expected profit per listing and run. current_profit_minor is
-- the profit of one sale at the price the listing had when the run priced it (fees, shipping
-- and packing out, in the listing's currency); margin = current_profit_minor / price_minor,
-- rounded to 4 places, halves away from zero (DuckDB round). expected_profit_minor is one
-- sale's profit after the run's decision: at new_price_minor for a change the run sent
-- (not held), else at the old price; null when it leaves the listing off sale.
-- below_cost: a buyable listing (quantity > 0, and visible on BASE) whose price in yen is
-- below Amazon's landed cost cost_jpy, eBay's cents taken at the run's FX rate, compared
-- exactly (price_minor × fx_jpy_per_usd < cost_jpy × 100, no rounding); null when the cost
-- or the rate is unknown (Amazon had nothing to buy: no cost to be below).
with rows as (
    select
        l.*,
        coalesce(r.priced_at, r.started_at) as priced_at,
        case when l.currency = 'USD' then r.fx_jpy_per_usd end as fx_jpy_per_usd,
        l.quantity > 0 and coalesce(l.visible, true) as buyable,
        l.change_kind is not null and not l.held as changed
    from listing_rows as l
    left join runs as r on r.run_id = l.run_id
),

final as (
    select
        run_id,
        platform,
        priced_at,
        account_id,
        listing_key,
        asin,
        currency,
        price_minor,
        cost_jpy,
        fx_jpy_per_usd,
        source_status,
        buyable,
        current_profit_minor,
        cast(round(current_profit_minor / price_minor, 4) as decimal(9, 4)) as margin,
        case
            when changed and coalesce(new_quantity = 0 or not new_visible, false) then null
            when changed then expected_profit_minor
            when buyable then current_profit_minor
        end as expected_profit_minor,
        case
            when not buyable then false
            when currency = 'JPY' then price_minor < cost_jpy
            else price_minor * fx_jpy_per_usd < cost_jpy * 100
        end as below_cost,
        change_kind,
        held
    from rows
)

select * from final
