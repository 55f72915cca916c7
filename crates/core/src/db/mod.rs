//! Database access: one pool per process, one [`Session`] (a pooled connection) per worker.
//!
//! Every SQL statement racelab runs lives here, behind the `Dialect` trait; a strategy is written
//! once against [`Session`] and never sees a dialect. A statement every backend runs alike is written
//! once (`sql`, run by `common`), with what differs between the dialects' SQL (placeholders, quoting
//! of `like`, the upsert clause, `RETURNING` vs `LAST_INSERT_ID`) as data; what truly differs
//! (transactions, lock timeouts, application locks, which error code means what) stays inside
//! `postgres`, `mysql` and `sqlite`. This module only names the parts and what they export; it holds
//! no code of its own.

mod answer;
mod classify;
mod common;
mod connect;
mod database;
mod dialect;
mod driver;
mod hosts;
mod idempotency;
pub(crate) mod innodb;
mod isolation;
mod mysql;
mod options;
mod pool;
mod postgres;
mod resource;
mod session;
mod sql;
mod sqlite;
mod statement;
mod types;
mod url;
/// The statements on a table of the user's own (`crate::table`).
mod user_table;
/// Connections handed back clean, kept for the next session without sqlx's return ping.
mod warm;
/// The workloads' statements and the typed `Session` calls that run them, one workload a file.
mod workloads;

pub(crate) use self::answer::{locked_row, not_found, read_counter, relabel_for_lock_mode, slot_error};
pub(crate) use self::classify::classify;
pub use self::connect::{ConnectError, FileProblem, Refusal, product};
pub use self::database::Database;
pub(crate) use self::dialect::{Conn, Dialect, db_err};
pub(crate) use self::driver::Arg;
pub use self::hosts::HostState;
pub use self::idempotency::StoredResponse;
pub use self::isolation::{Isolation, UnknownIsolation};
pub use self::mysql::NodeState;
pub use self::options::ConnectOptions;
use self::options::{prepare_connection, quiet_lock_waits};
pub use self::pool::PING_AFTER_IDLE;
pub use self::resource::{Expected, Precondition};
pub use self::session::Session;
pub(crate) use self::statement::Statement;
pub use self::types::{Counter, LockMode, Pk, PostRow, TxMode};
pub use self::url::{Backend, DEFAULT_DATABASE_URL, DatabaseUrl, SessionTarget, UrlError, redact};
pub(crate) use self::user_table::UserTableSql;
pub use self::warm::RETURN_AFTER_IDLE;
pub use self::workloads::{AccountRow, BookingCount, DoctorRow, JobRow, StockRow};
pub(crate) use self::workloads::{CLAIMED, DONE, PENDING};
/// The dialects, for code that runs their functions on raw connections of its own (the anomaly suite).
pub(crate) use self::{mysql::MySql as MySqlDialect, postgres::Postgres as PostgresDialect};
