-- 021: the review gate's record (issue 5): the breaker verdict per run and platform, and the
-- approvals that release held rows and tripped breakers.
create table review_breakers (
    run_id        varchar not null,
    platform      varchar not null,
    tripped       boolean not null,
    reasons       varchar,                  -- sentences joined by '; ', null when not tripped
    evaluated_at  timestamptz not null,
    primary key (run_id, platform)
);

create table review_approvals (
    run_id       varchar not null,
    platform     varchar not null,
    approved_at  timestamptz not null,
    held_rows    integer not null,          -- held rows released by this approval
    breaker      boolean not null,          -- whether a tripped breaker was released
    primary key (run_id, platform)
);
