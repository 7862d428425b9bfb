-- priced_listings: the listings of observed_listings whose price or stock changes in this
-- run — the rule's target price and stock, the decision, and why it would be held — one row
-- per changed listing (platform, account_id, listing_key). pipeline/transform.py fetches the
-- rows as Arrow and registers them as priced_changes: diff.sql selects one platform's
-- rows, platform_stats counts them and their held rows. (Only changed rows leave
-- DuckDB: materialising every listing cost about half a second per million listings, for
-- rows nobody reads.)
--
-- Reads: observed_listings (sql/transform/observed_listings.sql) and the frame markup_bands
-- that pipeline/transform.py registers.
-- stale_before (timestamptz: the run's moment as_of less max_source_age, the staleness
-- guardrail's limit) is a column of pricing_rules, so a replay of many runs (replay_run,
-- kept in the output) holds each run's own, and no row subtracts an interval from a
-- timestamptz. Parameters: $max_move_bp, $max_source_age_s, and
-- $changes_only: true keeps the changed listings only; false keeps every listing (change_kind
-- null where nothing changes), which transform writes as the run's listing history
-- (data/listings/…) and a what-if replay reads.
--
-- Money is integer: yen on BASE, US cents on eBay ("the platform unit"); rates are basis
-- points (1/10,000). Every division is a ceiling on non-negative integers, written
-- (n + d - 1) // d, in hugeint so no intermediate overflows. pipeline/pricing.py:decide is
-- the independent reference; the two are tested to agree on every row.
with

banded as (
    select
        observed.*,
        bands.multiplier_bp,
        bands.add_jpy
    from observed_listings as observed
    left join markup_bands as bands
        on bands.account_id = observed.account_id
        and observed.cost_jpy > bands.lower_exclusive_jpy
        and (bands.up_to_jpy is null or observed.cost_jpy <= bands.up_to_jpy)
),

raw_priced as (
    select
        *,
        case
            when source_says <> 'in_stock' then null
            -- markup: ceil((cost × multiplier + add) in the platform unit)
            when method = 'markup' then (
                (cast(cost_jpy as hugeint) * multiplier_bp + add_jpy * 10000) * conv_num
                + 10000 * conv_den - 1
            ) // (10000 * conv_den)
            -- cost_plus: ceil((cost + shipping + packing) / (1 − fee − duty − margin))
            else (
                cast(cost_jpy + shipping_jpy + packing_jpy as hugeint) * 10000 * conv_num
                + (10000 - fee_bp - duty_bp - margin_bp) * conv_den - 1
            ) // ((10000 - fee_bp - duty_bp - margin_bp) * conv_den)
        end as raw_price
    from banded
),

rounded as (
    select
        *,
        -- (DuckDB's greatest() skips nulls, so a missing raw price must stay null explicitly)
        case
            when raw_price is null then null
            -- up_to_unit: the next multiple of round_unit at or above
            when rounding = 'up_to_unit' then (raw_price + round_unit - 1) // round_unit * round_unit
            -- up_to_ending: the smallest price at or above ending in round_ending (e.g. .99)
            when rounding = 'up_to_ending' then round_ending
                + (greatest(raw_price - round_ending, 0) + round_unit - 1) // round_unit * round_unit
            else raw_price
        end as rounded_price
    from raw_priced
),

targeted as (
    select
        *,
        -- min_price first, then max_price (a bound left out does not apply)
        case
            when rounded_price is null then null
            when max_price < greatest(rounded_price, coalesce(min_price, rounded_price))
                then max_price
            else greatest(rounded_price, coalesce(min_price, rounded_price))
        end as target_price,
        -- cost + shipping + packing in the platform unit, rounded up
        (cast(cost_jpy + shipping_jpy + packing_jpy as hugeint) * conv_num + conv_den - 1)
            // conv_den as cost_in_unit,
        old_quantity = 0 or (out_of_stock_action = 'hide' and not old_visible) as currently_out
    from rounded
),

assessed as (
    select
        *,
        -- what the listing earns now, at its current price (in-stock sources only)
        case
            when source_says = 'in_stock' then old_price
                - (cast(old_price as hugeint) * (fee_bp + duty_bp) + 9999) // 10000 - cost_in_unit
        end as current_profit
    from targeted
),

decided as (
    select
        *,
        case
            when source_says <> 'in_stock' then old_price
            when target_price = old_price then old_price
            -- losing money now and the rule prices it no higher: it goes out of stock below
            when not currently_out and target_price <= old_price and current_profit < min_profit
                then old_price
            -- a fallback observation may raise a price, never lower it
            when source_status = 'fallback' and target_price < old_price then old_price
            -- too small a move is not worth a push, unless it lifts a loss-making price
            when (
                abs(target_price - old_price) < min_change
                or abs(target_price - old_price) * 10000 < min_change_bp * old_price
            )
            and not (target_price > old_price and current_profit < min_profit) then old_price
            else target_price
        end as new_price,
        case
            when source_says = 'out_of_stock' and not currently_out then 'out_of_stock'
            -- a fallback observation never restocks
            when source_says = 'in_stock' and currently_out and source_status <> 'fallback'
                then 'restock'
            -- losing money at its price, and the rule prices it no higher (max_price, or a
            -- markup under cost): it goes out of stock, held for a person
            -- (profit_below_minimum) and paused meanwhile
            when source_says = 'in_stock' and not currently_out and target_price <= old_price
                and current_profit < min_profit
                then 'out_of_stock'
        end as stock_kind
    from assessed
),

changed as (
    select
        *,
        case
            when stock_kind = 'out_of_stock' and out_of_stock_action = 'hide' then old_quantity
            when stock_kind = 'out_of_stock' then 0
            when stock_kind = 'restock' and old_quantity = 0 then restock_quantity
            else old_quantity
        end as new_quantity,
        case
            when stock_kind = 'out_of_stock' and out_of_stock_action = 'hide' then false
            when stock_kind = 'restock' and out_of_stock_action = 'hide' then true
            else old_visible
        end as new_visible,
        case
            when source_says = 'in_stock' then new_price
                - (cast(new_price as hugeint) * (fee_bp + duty_bp) + 9999) // 10000 - cost_in_unit
        end as expected_profit,
        coalesce(
            stock_kind,
            case
                when new_price > old_price then 'price_up'
                when new_price < old_price then 'price_down'
            end
        ) as change_kind
    from decided
),

hold_checked as (
    select
        *,
        concat_ws(
            ', ',
            case
                when abs(new_price - old_price) * 10000 > $max_move_bp * old_price
                    then 'price_move_over_limit'
            end,
            case when expected_profit < min_profit then 'profit_below_minimum' end,
            case when rounded_price > max_price then 'capped_at_max_price' end,
            case
                when source_fetched_at is null
                    or source_fetched_at < stale_before
                    or coalesce(source_fallback_age_seconds, 0) > $max_source_age_s
                    then 'source_stale'
            end,
            case when drifted then 'listing_drifted' end
        ) as hold_text
    from changed
),

final as (
    select
        replay_run,
        platform,
        account_id,
        listing_key,
        item_id,
        sku,
        offer_id,
        listing_id,
        api,
        currency,
        asin,
        source_says,
        change_kind,
        cast(old_price as bigint) as old_price,
        cast(new_price as bigint) as new_price,
        old_quantity,
        new_quantity,
        old_visible,
        new_visible,
        drifted,
        cast(target_price as bigint) as target_price,
        min_price,
        max_price,
        min_profit,
        cast(expected_profit as bigint) as expected_profit,
        cost_jpy,
        method,
        fx_text,
        source_run_id,
        source_fetched_at,
        source_status,
        source_fallback_age_seconds,
        hold_text <> '' as held,
        nullif(hold_text, '') as hold_reason,
        title,
        cast(current_profit as bigint) as current_profit,
        -- Waiting never loses money (docs/review.md): a held row whose listing is buyable
        -- and cannot be supplied, or earns under cost + fees + minimum profit at its current
        -- price, gets a protective action that load takes without waiting for a person: the
        -- held raise itself when that is all that holds it and it restores the profit, else
        -- a pause (quantity 0).
        case
            when hold_text = '' or currently_out then null
            when source_says = 'out_of_stock' then 'pause'
            when source_says = 'in_stock' and current_profit < min_profit then
                case
                    when new_price > old_price and expected_profit >= min_profit
                        and hold_text = 'price_move_over_limit' then 'raise'
                    else 'pause'
                end
        end as protection,
        case
            when hold_text = '' or currently_out then null
            when source_says = 'out_of_stock' then 'amazon_cannot_supply'
            when source_says = 'in_stock' and current_profit < min_profit
                then 'loss_at_current_price'
        end as protection_reason,
        -- the change a person's decision binds to: the listing, its old and new values and
        -- the Amazon observation's values (pipeline/decisions.py); a listing nothing
        -- changes has none (no digest spent on the million that stay as they are)
        case when change_kind is not null then md5(concat_ws(
            '|', platform, account_id, listing_key, asin,
            cast(old_price as varchar), cast(new_price as varchar),
            cast(old_quantity as varchar), cast(new_quantity as varchar),
            coalesce(cast(old_visible as varchar), '-'), coalesce(cast(new_visible as varchar), '-'),
            coalesce(cast(cost_jpy as varchar), '-'), source_says
        )) end as change_id
    from hold_checked
)

select * from final
where change_kind is not null or not $changes_only
