-- fetch_statuses: coverage with its reasons. Per run, how many ASINs ended in each status,
-- their share of the run's ASINs, whether they are facts, and a sentence saying what the
-- status means and what to do. An invalid ASIN is split by who said so: invsync itself (not
-- of ASIN form, error_code MalformedAsin, never sent) or Amazon.
with reasons (status, malformed, is_fact, reason) as (
    values
        ('ok', false, true,
         'Amazon answered with an offer that passes the offer policy: priced from this run.'),
        ('no_offer', false, true,
         'Amazon answered that nobody sells it new: its listings go out of stock.'),
        ('filtered_out', false, true,
         'Amazon has offers but none passes [offer_policy]: its listings go out of stock; '
         || 'loosen the policy if that is wrong.'),
        ('fallback', false, false,
         'The call failed; the last good observation of an earlier run (fallback_from_run) '
         || 'stood in: look at fetch_health.api_errors and the log if this persists.'),
        ('unknown', false, false,
         'The call failed and no recent observation could stand in: its listings stayed as '
         || 'they were; look at the run''s log.'),
        ('api_error', false, false,
         'The call failed inside the fetch (a run that finished turns these into fallback '
         || 'or unknown): look at the run''s log.'),
        ('invalid_asin', false, false,
         'Amazon says the ASIN does not exist on amazon.co.jp: fix the listing''s ASIN.'),
        ('invalid_asin', true, false,
         'Not an ASIN (B and 9 letters or digits, or an ISBN-10), so never sent: fix the '
         || 'listing''s ASIN.')
),

counted as (
    select
        run_id,
        status,
        status = 'invalid_asin' and coalesce(error_code, '') = 'MalformedAsin' as malformed,
        count(*) as asins
    from snapshots
    group by all
),

final as (
    select
        c.run_id,
        r.started_at,
        c.status,
        coalesce(reasons.is_fact, false) as is_fact,
        c.asins,
        round(c.asins / sum(c.asins) over (partition by c.run_id), 4) as share,
        coalesce(reasons.reason, 'A status this version of invsync does not know.') as reason
    from counted as c
    left join runs as r on r.run_id = c.run_id
    left join reasons on reasons.status = c.status and reasons.malformed = c.malformed
)

select * from final
