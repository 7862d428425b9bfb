-- diffs: every change a run decided on, both platforms, one row per listing and run.
with final as (
    select * from diff_rows
)

select * from final
