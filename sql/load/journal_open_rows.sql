-- The rows of one run and platform that still need work: everything but `ok`,
-- `quarantined`, `void` (a change a later transform or load replaced) and rows skipped for
-- drift (the next pull and review decide those).
with journal as (
    select *
    from push_journal
    where run_id = $run_id
      and platform = $platform
),

final as (
    select *
    from journal
    where state not in ('ok', 'quarantined', 'void')
      and not (state = 'skipped' and error_code = 'drifted')
)

select * from final
order by account_id, listing_key
