-- The account's unmapped listings, as this pull saw them (the registered frame `unmapped`:
-- listing_key, reason, title), replacing the last pull's (unmapped_clear.sql runs first).
insert into listings_unmapped (platform, account_id, listing_key, reason, title, seen_at)
select $platform, $account_id, listing_key, reason, title, now()
from unmapped
