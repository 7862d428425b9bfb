-- urgency_scores: per listed ASIN, its observed change history, the chance it changed since
-- its last observation and what a wrong price or stock costs on its listings: the order a
-- budgeted run fetches in (pipeline/urgency.py, docs/fetch.md "Budgeted runs").
-- Reads: the snapshot files $files (a run id is in a file's path only), wanted_asins (the
-- valid listed ASINs, registered by pipeline/urgency.py) and run_listings (the transform's
-- view of every listed listing, sql/transform/run_listings.sql).
-- Parameters: $files, $now (UTC), $seen_statuses (the fact statuses ok, no_offer,
-- filtered_out, and invalid_asin: Amazon's own answer that the ASIN does not exist, so it is
-- not asked again first in every run; an api_error, a fallback or an unknown row is no
-- observation), $prior_seconds and $prior_changes (the prior's one pseudo-interval and
-- the changes in it),
-- $jpy_per_usd (eBay prices in yen, for the exposure only).
--
-- Change rate (Cho & Garcia-Molina, "Estimating frequency of change", ACM TOIT 2003, the
-- improved estimator r = -ln((n - X + 0.5) / (n + 0.5)) for n accesses of which X saw a
-- change), over the ASIN's consecutive fact observations: n intervals, X of them whose
-- (status, price_jpy, in_stock) differ, spanning T seconds, plus one prior pseudo-interval
-- of $prior_seconds with $prior_changes changes (half a change a day: an ASIN seen once is
-- neither certain nor frozen): lambda = -ln((n' - X' + 0.5) / (n' + 0.5)) / (T' / n') per second.
with

observations as (
    select s.asin, s.fetched_at, s.status, s.price_jpy, s.in_stock
    from read_parquet(
        $files, union_by_name = true, hive_partitioning = true,
        hive_types = {'dt': varchar, 'run_id': varchar}
    ) as s
    semi join wanted_asins as w on w.asin = s.asin
    where list_contains($seen_statuses, s.status)
      and s.fetched_at is not null
      and s.fetched_at <= $now
),

-- each ASIN's states in time order, as one list (sorting within each ASIN's own hundred or
-- so rows is cheaper than a window over every row: 30,000 ASINs × 100 runs in about 2 s)
histories as (
    select
        asin,
        list(hash(status, price_jpy, in_stock) order by fetched_at) as states,
        epoch(max(fetched_at)) - epoch(min(fetched_at)) as spanned_seconds,
        max(fetched_at) as last_observed_at,
        arg_max(price_jpy, fetched_at) filter (where status = 'ok') as last_cost_jpy
    from observations
    group by asin
),

history as (
    select
        asin,
        len(states) - 1 as intervals,
        coalesce(list_sum(list_transform(
            range(1, len(states)), lambda i: (states[i] <> states[i + 1])::int
        )), 0) as changes,
        spanned_seconds,
        last_observed_at,
        last_cost_jpy
    from histories
),

rated as (
    select
        *,
        -ln(
            (intervals + 1 - (changes + $prior_changes) + 0.5) / (intervals + 1 + 0.5)
        ) / ((spanned_seconds + $prior_seconds) / (intervals + 1)) as change_rate
    from history
),

listed as (
    select
        asin,
        greatest(old_quantity, 1) as quantity,
        -- our price in yen: BASE in yen, eBay cents at the configured (or demo) rate
        case
            when platform = 'ebay' then cast(round(old_price * $jpy_per_usd / 100) as bigint)
            else old_price
        end as price_yen
    from run_listings
),

exposed as (
    select
        listed.asin,
        sum(
            -- stock on hand × our price, weighted by how thin the margin over the last
            -- Amazon cost is: 20× at no margin, 10× at 5 %, 4× at 20 %, 1× at 95 %
            cast(listed.quantity as hugeint) * greatest(listed.price_yen, 1) * 10000
            // (500 + least(greatest(
                case
                    when rated.last_cost_jpy is null or listed.price_yen <= 0 then 0
                    else (listed.price_yen - rated.last_cost_jpy) * 10000 // listed.price_yen
                end, 0), 9500))
        ) as exposure_jpy
    from listed
    left join rated using (asin)
    group by listed.asin
),

scored as (
    select
        w.asin,
        coalesce(rated.intervals, 0) as intervals,
        coalesce(rated.changes, 0) as changes,
        rated.change_rate,
        rated.last_observed_at,
        epoch(cast($now as timestamptz)) - epoch(rated.last_observed_at) as age_seconds,
        case
            when rated.last_observed_at is null then 1.0
            else 1 - exp(-rated.change_rate
                * greatest(epoch(cast($now as timestamptz)) - epoch(rated.last_observed_at), 0))
        end as p_changed,
        cast(coalesce(exposed.exposure_jpy, 0) as bigint) as exposure_jpy
    from wanted_asins as w
    left join rated using (asin)
    left join exposed using (asin)
),

final as (
    select
        *,
        p_changed * exposure_jpy as urgency,
        row_number() over (
            order by last_observed_at is null desc, p_changed * exposure_jpy desc, asin
        ) as urgency_rank
    from scored
)

select * from final
order by urgency_rank
