-- stored_listings: the listings as they stood at every replayed run, each row keyed by its
-- run as replay_run (the run_id of its path) and with the platform of its path, for
-- sql/transform/run_listings_stored.sql to map into the run_listings shape; so
-- sql/transform/observed_listings.sql prices every run of the window at once
-- (pipeline/whatif.py).
--
-- Reads: $files, the runs' listings/run_id=<run>/platform=<p>/listings.parquet (the run
-- and platform are in the path only: pipeline/schemas.py ListingHistory); only the columns
-- of the listing as it stood, which run_listings_stored.sql maps.
create or replace temp table stored_listings as
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
    price_minor,
    quantity,
    visible,
    drifted,
    run_id as replay_run
from read_parquet(
    $files,
    hive_partitioning = true,
    hive_types = {'run_id': varchar, 'platform': varchar}
)
