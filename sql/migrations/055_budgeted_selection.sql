-- 055 (issue 16): what a budgeted run observed. fetch_selected_asins: the listed ASINs its
-- budget selected (null: a full pass); fetch_sweep_asins: of those, the ones taken oldest
-- first for the max-age sweep; fetch_guarantee_note: the sentence, with its numbers, saying
-- why every listed ASIN cannot be kept within guardrails.max_source_age (null: it can).
alter table runs add column if not exists fetch_selected_asins integer;
alter table runs add column if not exists fetch_sweep_asins integer;
alter table runs add column if not exists fetch_guarantee_note varchar;
