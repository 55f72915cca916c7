-- The slots of the sharded counter: a post's count is its own `like` plus the sum of its slots' `like`.
-- One increment upserts one random slot (INSERT ... ON DUPLICATE KEY UPDATE), so concurrent increments
-- of one post lock different rows instead of queueing on the post's row. `version` counts the writes to
-- a slot, as `posts.version` does for the post, so an experiment can tell its own writes from others'.
-- The foreign key keeps a slot from existing without its post: an increment of a missing post fails
-- with 1452 instead of creating an orphan. InnoDB checks it with a shared lock on the post's row, which
-- other increments share and the atomic strategies' writes do not wait for long.
CREATE TABLE IF NOT EXISTS post_slots (
    post        BIGINT NOT NULL,
    slot        INT NOT NULL CHECK (slot >= 0),
    `like`      BIGINT NOT NULL DEFAULT 0,
    version     BIGINT NOT NULL DEFAULT 0 CHECK (version >= 0),
    PRIMARY KEY (post, slot),
    CONSTRAINT post_slots_post_fk FOREIGN KEY (post) REFERENCES posts (pk) ON DELETE CASCADE
) ENGINE = InnoDB;
