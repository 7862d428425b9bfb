-- breaker_verdicts: the review gate's run-level verdict per run and platform (the breaker
-- judges a whole run's data, docs/review.md), and whether a person released a tripped one
-- (`invsync approve RUN --platform P`, decisions.sqlite). blocking: tripped and not released,
-- so the run's changes on that platform wait.
with final as (
    select
        b.run_id,
        b.platform,
        b.tripped,
        b.reasons,
        b.evaluated_at,
        r.released_at,
        r.released_by,
        b.tripped and r.released_at is null as blocking
    from review_breakers as b
    left join breaker_releases as r on r.run_id = b.run_id and r.platform = b.platform
)

select * from final
