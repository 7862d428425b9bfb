-- The Out-of-Stock Control preference a load of this run already read for an eBay account
-- (no row: not read yet).
select out_of_stock_control
from ebay_run_preferences
where run_id = $run_id
  and account_id = $account_id
