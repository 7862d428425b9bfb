-- Inventory-API listings of the account that eBay no longer has: gone (returns their SKUs).
-- Trading listings are invisible to the Inventory API and are never marked gone here.
update listings_ebay
set status = 'gone', updated_at = now()
where account_id = $account_id
  and api = 'inventory'
  and status <> 'gone'
  and sku not in (select sku from pulled)
returning sku
