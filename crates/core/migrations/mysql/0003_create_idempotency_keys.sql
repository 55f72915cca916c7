-- The Idempotency-Key of each `POST /posts/{pk}/likes` that carried one, with the request it was
-- used for (`fingerprint`) and the answer given (`status`, `body`). A key's row is inserted in the same
-- transaction as the increment and its answer, so it commits with them or not at all: a retried
-- request finds either nothing (and makes the like) or the stored answer (and replays it), even after
-- a crash between the commit and the reply. A concurrent retry waits on the key's unique index for the
-- first request's transaction to end. The key is compared byte for byte (a binary collation).
CREATE TABLE IF NOT EXISTS idempotency_keys (
    idempotency_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    fingerprint     TEXT NOT NULL,
    status          INT NOT NULL,
    body            TEXT NOT NULL,
    created_at      TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB;
