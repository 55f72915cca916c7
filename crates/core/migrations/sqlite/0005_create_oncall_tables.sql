-- The `oncall` workload's tables (`racelab lab --workload oncall`): a run's shifts, each with its
-- doctors on call. A doctor goes off call only if at least one other stays; two who check at once,
-- each seeing the other still on call, both leave (write skew: each writes only its own row).
--
-- oncall_shifts: one row per shift of a run; `on_call` is the materialized count of its doctors on
-- call, which only the `materialized` strategy keeps (a guarded decrement on one row every doctor of
-- the shift must write, turning the write skew into a write conflict).
CREATE TABLE IF NOT EXISTS oncall_shifts (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    on_call INTEGER NOT NULL
);

-- oncall_doctors: a shift's doctors; `on_call` is 1 while the doctor is on call, 0 once off.
CREATE TABLE IF NOT EXISTS oncall_doctors (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    shift   INTEGER NOT NULL,
    on_call INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS oncall_doctors_shift ON oncall_doctors (shift);
