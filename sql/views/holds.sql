-- holds: every row the review gate held, of every run, why, and what a person decided about
-- the change (decisions.sqlite, exported as `decisions`): approve, reject or hold, null while
-- nobody has. A decision is bound to the change (change_id), not the run: one decision
-- answers every run that proposed the same change from the same Amazon observation.
-- waiting: still waits for a person, as the review counts it (decisions.waits_for_a_person):
-- nobody approved or rejected the change, and no protective raise already sent it.
with held as (
    select * from diffs where held
),

final as (
    select
        h.run_id,
        h.platform,
        h.account_id,
        h.listing_key,
        h.asin,
        h.title,
        h.change_kind,
        h.currency,
        h.old_price_minor,
        h.new_price_minor,
        h.old_quantity,
        h.new_quantity,
        h.current_profit_minor,
        h.expected_profit_minor,
        h.hold_reason,
        h.protection,
        h.protection_reason,
        h.change_id,
        d.decision,
        coalesce(d.decision, 'hold') = 'hold' and coalesce(h.protection, '') <> 'raise' as waiting,
        d.decided_at,
        d.decided_by,
        d.run_id as decided_in_run_id,
        d.note
    from held as h
    left join decisions as d on d.change_id = h.change_id
)

select * from final
