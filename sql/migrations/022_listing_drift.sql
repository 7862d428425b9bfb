-- 022: `listings pull` (issue 6) sets drift_detected_at when a listing's platform state
-- differs from what invsync last pushed or saw; transform holds changes to such a listing.
alter table listings_base add column if not exists drift_detected_at timestamptz;
alter table listings_ebay add column if not exists drift_detected_at timestamptz;
