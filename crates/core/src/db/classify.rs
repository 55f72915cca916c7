//! A driver error classified by the backend it came from, for code that holds a backend value rather
//! than a dialect type. Its own module, above the three dialects, so that the `Dialect` trait never
//! names the backends that implement it. It must never keep a code table of its own.

use super::dialect::Dialect;
use super::{Backend, mysql, postgres, sqlite};
use crate::error::ErrorKind;

/// Classifies a driver error of `backend` exactly as a session would: for code that runs SQL of its
/// own on raw connections (the anomaly suite) and must not keep a second copy of the code tables.
pub(crate) fn classify(backend: Backend, err: &sqlx::Error) -> ErrorKind {
    match backend {
        Backend::Postgres => <postgres::Postgres as Dialect>::classify(err),
        Backend::MySql => <mysql::MySql as Dialect>::classify(err),
        Backend::Sqlite => <sqlite::Sqlite as Dialect>::classify(err),
    }
}
