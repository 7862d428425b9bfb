-- replay_listings: the listings as they stood at every replayed run, in the shape of the
-- transform's run_listings (sql/transform/run_listings.sql) plus the run as replay_run, and
-- run_listings defined over them, so sql/transform/observed_listings.sql prices every run
-- of the window at once (pipeline/whatif.py).
--
-- Reads: $files, the runs' listings/run_id=<run>/platform=<p>/listings.parquet (the run
-- and platform are in the path only). Money: price_minor in minor units of currency (yen on
-- BASE, US cents on eBay). eBay has no hidden state: old_visible is true there, as live.
create or replace temp table replay_listings as
select
    platform,
    account_id,
    listing_key,
    item_id,
    sku,
    offer_id,
    listing_id,
    api,
    currency,
    asin,
    price_minor as old_price,
    cast(quantity as bigint) as old_quantity,
    case when platform = 'base' then visible else true end as old_visible,
    drifted,
    cast(null as varchar) as title,
    run_id as replay_run
from read_parquet($files, hive_partitioning = true, hive_types = {'run_id': varchar, 'platform': varchar});

create or replace temp view run_listings as
select * from replay_listings;
