-- The slots of the sharded counter: a post's count is its own `like` plus the sum of its slots' `like`.
-- SQLite has one writer at a time, so slots do not let increments run side by side here; the table
-- exists so that every backend runs the same strategy and reads the same total. `version` counts the
-- writes to a slot, as `posts.version` does for the post. The foreign key (enforced: sqlx turns
-- `PRAGMA foreign_keys` on for every connection) keeps a slot from existing without its post.
CREATE TABLE IF NOT EXISTS post_slots (
    post        INTEGER NOT NULL REFERENCES posts (pk) ON DELETE CASCADE,
    slot        INTEGER NOT NULL CHECK (slot >= 0),
    "like"      INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0),
    PRIMARY KEY (post, slot)
) WITHOUT ROWID;
