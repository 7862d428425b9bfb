-- 053 (issue 15): what a run priced with, so its decisions can be replayed (invsync whatif)
-- and analysts see when a listing's price was judged. priced_at is the moment the transform
-- priced the run (its as_of: source ages are measured to it); fx_jpy_per_usd the exact
-- rate eBay was priced at (null when the run priced no eBay listing).
alter table runs add column if not exists priced_at timestamptz;
alter table runs add column if not exists fx_jpy_per_usd decimal(12, 4);
