-- Revisions sent per eBay listing since a moment: every attempt of every run counts,
-- because eBay counts each revision call against its 250 per listing per day.
select listing_key, sum(attempts)::integer as revisions
from push_journal
where platform = 'ebay'
  and account_id = $account_id
  and sent_at >= $since
group by listing_key
