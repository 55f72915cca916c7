-- The slots of the sharded counter: a post's count is its own `like` plus the sum of its slots' `like`.
-- One increment upserts one random slot, so concurrent increments of one post lock different rows
-- instead of queueing on the post's row (the hot-row ceiling). `version` counts the writes to a slot,
-- as `posts.version` does for the post, so an experiment can still tell its own writes from others'.
-- The foreign key keeps a slot from existing without its post: an increment of a missing post fails
-- (23503) instead of creating an orphan. Its check runs only when a slot row is first inserted, not on
-- the updates that follow, which leave `post` unchanged.
CREATE TABLE IF NOT EXISTS post_slots (
    post        BIGINT NOT NULL REFERENCES posts (pk) ON DELETE CASCADE,
    slot        INTEGER NOT NULL CHECK (slot >= 0),
    "like"      BIGINT NOT NULL DEFAULT 0,
    version     BIGINT NOT NULL DEFAULT 0 CHECK (version >= 0),
    PRIMARY KEY (post, slot)
);
