-- The shop's BASE items that have variations (their stock is BASE's sum of the variations'
-- stock, never set by a push). Parameters: $account_id. Returns item_id.
select item_id
from listings_base
where account_id = $account_id
  and has_variations
