//! Database access: one pool per process, one [`Session`] (a pooled connection) per worker.
//!
//! Every SQL statement racelab runs lives in the backend modules, behind the [`Dialect`] trait; a
//! strategy is written once against [`Session`] and never sees a dialect. What differs between
//! databases (quoting of `like`, `RETURNING` vs `LAST_INSERT_ID`, lock clauses, which code means what)
//! stays inside `postgres`, `mysql` and `sqlite`. This module only names the parts and what they
//! export; it holds no code of its own.

mod answer;
mod connect;
mod database;
mod dialect;
mod idempotency;
mod mysql;
mod options;
mod postgres;
mod resource;
mod session;
mod sqlite;
mod types;
mod url;

pub(crate) use self::answer::{locked_row, not_found, read_counter, relabel_for_lock_mode, slot_error};
pub use self::connect::{ConnectError, Refusal};
pub use self::database::Database;
pub(crate) use self::dialect::{Conn, Dialect, classify, db_err};
pub use self::idempotency::StoredResponse;
pub use self::mysql::NodeState;
pub use self::options::ConnectOptions;
use self::options::{prepare_connection, quiet_lock_waits};
pub use self::resource::{Expected, Precondition};
pub use self::session::Session;
pub use self::types::{Counter, LockMode, Pk, PostRow, TxMode};
pub use self::url::{Backend, DEFAULT_DATABASE_URL, DatabaseUrl, UrlError, redact};
