-- A `sent` journal row whose listing the platform shows with the row's new values (the pull
-- classified it `pushed`): the change was applied and only its answer was lost (a crash
-- between the call and its record), so it is `ok`, never sent again and never drift. A
-- `sent` row the platform does not show stays `sent` for the load's read-back. Run in the
-- pull's transaction; returns the listing keys settled.
update push_journal as j
set state = 'ok',
    finished_at = now()
from classified as c
where c.kind = 'pushed'
  and j.platform = $platform
  and j.account_id = $account_id
  and j.listing_key = cast(c.listing_key as varchar)
  and j.run_id = c.sent_run_id
  and j.change_id = c.sent_change_id
  and j.state = 'sent'
returning j.listing_key
