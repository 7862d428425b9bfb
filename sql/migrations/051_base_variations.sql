-- 051 (issue 13): BASE items with variations. BASE sets such an item's stock to the sum of
-- its variations' variation_stock (base_api_v1_items_edit.md), so invsync cannot set it:
-- the listing pull records which items have variations and the BASE push sends them price
-- and visibility only (docs/load.md, "BASE items with variations").
alter table listings_base add column if not exists has_variations boolean default false;
update listings_base set has_variations = false where has_variations is null;
