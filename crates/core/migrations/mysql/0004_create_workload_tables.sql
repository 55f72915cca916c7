-- The workloads' tables (`racelab lab --workload stock|transfer`). Every run creates rows of its own
-- (one item, or its accounts), so runs on one database never touch each other's rows. InnoDB: row
-- locks and transactions; a primary key on each, as Galera requires.
--
-- stock_items: one item per run; buyers take `qty` one unit at a time. The CHECK (enforced since
-- MariaDB 10.2 and MySQL 8.0.16) is the `check-constraint` strategy's guard: the decrement that would
-- make the stock negative is refused (MariaDB 4025, MySQL 3819), an answer ("sold out"), not an error.
-- `version` counts the writes to the row (the optimistic strategy's compare-and-set).
CREATE TABLE IF NOT EXISTS stock_items (
    id      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    qty     BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT stock_items_qty_not_negative CHECK (qty >= 0)
) ENGINE = InnoDB;

-- accounts: a run's accounts, between which transfers move amounts. No CHECK on the balance: whether
-- one can go negative is what the strategies show, and the invariant counts it.
CREATE TABLE IF NOT EXISTS accounts (
    id      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    balance BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0
) ENGINE = InnoDB;
