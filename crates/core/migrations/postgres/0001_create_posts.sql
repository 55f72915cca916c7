-- The seed's `posts` table. `like` is a reserved word and must be quoted. The counters are BIGINT so a
-- long benchmark cannot overflow them; `version` is the optimistic-lock counter and never negative
-- (the seed declared it unsigned, which PostgreSQL lacks).
CREATE TABLE IF NOT EXISTS posts (
    pk          BIGSERIAL PRIMARY KEY,
    "like"      BIGINT NOT NULL DEFAULT 0,
    version     BIGINT NOT NULL DEFAULT 0 CHECK (version >= 0),
    modified_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
