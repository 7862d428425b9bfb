-- The last pull's unmapped listings of one account, cleared before unmapped_replace.sql.
delete from listings_unmapped
where platform = $platform
  and account_id = $account_id
