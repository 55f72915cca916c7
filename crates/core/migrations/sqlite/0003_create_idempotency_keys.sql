-- The Idempotency-Key of each `POST /posts/{pk}/likes` that carried one, with the request it was
-- used for (`fingerprint`) and the answer given (`status`, `body`). A key's row is inserted in the same
-- transaction as the increment and its answer, so it commits with them or not at all: a retried
-- request finds either nothing (and makes the like) or the stored answer (and replays it), even after
-- a crash between the commit and the reply. (SQLite's write lock serialises the transactions.)
CREATE TABLE IF NOT EXISTS idempotency_keys (
    idempotency_key TEXT PRIMARY KEY,
    fingerprint     TEXT NOT NULL,
    status          INTEGER NOT NULL,
    body            TEXT NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
