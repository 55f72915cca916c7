-- The workloads' tables (`racelab lab --workload stock|transfer`). Every run creates rows of its own
-- (one item, or its accounts), so runs on one database never touch each other's rows.
--
-- stock_items: one item per run; buyers take `qty` one unit at a time. The CHECK is the
-- `check-constraint` strategy's guard: the decrement that would make the stock negative is refused
-- (SQLITE_CONSTRAINT_CHECK, 275), an answer ("sold out"), not an error. `version` counts the writes to
-- the row (the optimistic strategy's compare-and-set).
CREATE TABLE IF NOT EXISTS stock_items (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    qty     INTEGER NOT NULL CONSTRAINT stock_items_qty_not_negative CHECK (qty >= 0),
    version INTEGER NOT NULL DEFAULT 0
);

-- accounts: a run's accounts, between which transfers move amounts. No CHECK on the balance: whether
-- one can go negative is what the strategies show, and the invariant counts it.
CREATE TABLE IF NOT EXISTS accounts (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    balance INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 0
);
