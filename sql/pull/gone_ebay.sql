-- Listings of the account that eBay no longer shows: gone (returns their SKUs). `present`
-- holds the pulled SKUs and every SKU of the GetMyeBaySelling ActiveList (active listings,
-- mapped to an ASIN or not). A Trading listing is judged only when the ActiveList was read
-- whole ($trading_complete): a partial list cannot prove a listing ended.
update listings_ebay
set status = 'gone', updated_at = now()
where account_id = $account_id
  and status <> 'gone'
  and (api = 'inventory' or $trading_complete)
  and sku not in (select sku from present)
returning sku
