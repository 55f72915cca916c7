-- The seed's `posts` table on SQLite. `like` is a keyword: quoted. `modified_at` is stored as
-- ISO-8601 text in UTC (SQLite has no timestamp type).
CREATE TABLE IF NOT EXISTS posts (
    pk          INTEGER PRIMARY KEY AUTOINCREMENT,
    "like"      INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0),
    modified_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
