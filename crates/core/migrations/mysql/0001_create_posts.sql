-- The seed's `posts` table on MariaDB/MySQL. `like` is a reserved word: quoted with backticks.
-- `version` never goes negative (the seed used UNSIGNED; a CHECK keeps sqlx decoding it as i64).
-- InnoDB is required for row locks and transactions. TIMESTAMP(6) keeps microseconds.
CREATE TABLE IF NOT EXISTS posts (
    pk          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    `like`      BIGINT NOT NULL DEFAULT 0,
    version     BIGINT NOT NULL DEFAULT 0 CHECK (version >= 0),
    modified_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB;
