//! The statements that run on a table of the user's own ([`crate::table::UserTable`]): a key column
//! and an integer value column the caller names, quoted as each dialect quotes identifiers, and the
//! typed `Session` calls that run them.
//!
//! The names are checked before they come here (`table::ident`): only letters, digits and `_`, so a
//! quoted name can hold neither a quote nor a `?`. Each distinct statement text is rendered once
//! and kept for the life of the process (the driver prepares and caches it like a literal), so a
//! program that works on a handful of tables keeps a handful of statements, however many calls it
//! makes. Values are always bound parameters.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use super::sql::{Returning, Sql};
use super::{Arg, Backend, Dialect, Session, Statement, mysql, postgres, sqlite};
use crate::error::{DbError, ErrorKind};

/// The statements on one (table, key, value) of one backend.
pub(crate) struct UserTableSql {
    /// `table`, quoted, for messages.
    pub(crate) name: String,
    read: &'static Statement,
    read_for_update: &'static Statement,
    write: &'static Statement,
    write_if_value: &'static Statement,
    /// `v = v + ?` handing back the new value (`RETURNING`), or, on MariaDB/MySQL, which has no
    /// `UPDATE ... RETURNING`, `None`: the add and a read of the locked row then share a transaction.
    add_returning: Option<&'static Statement>,
    add: &'static Statement,
    take_if_at_least: &'static Statement,
}

impl UserTableSql {
    /// The statements for `table`, `key` and `value` (names already checked) on `backend`.
    pub(crate) fn new(backend: Backend, table: &[&str], key: &str, value: &str) -> Self {
        let sql = sql_of(backend);
        let quote = |name: &str| format!("{q}{name}{q}", q = sql.ident_quote);
        let t = table.iter().map(|part| quote(part)).collect::<Vec<_>>().join(".");
        let (k, v) = (quote(key), quote(value));
        // A value column may be any integer type; read back as BIGINT, it decodes as i64 everywhere.
        let (cast_open, cast_close) = sql.bigint;
        let read_value = format!("{cast_open}{v}{cast_close}");
        let add_returning = match sql.returning {
            Returning::Clause => {
                Some(intern(format!("UPDATE {t} SET {v} = {v} + ? WHERE {k} = ? RETURNING {read_value}")))
            }
            Returning::LastInsertId => None,
        };
        Self {
            read: intern(format!("SELECT {read_value} FROM {t} WHERE {k} = ?")),
            read_for_update: intern(format!("SELECT {read_value} FROM {t} WHERE {k} = ?{{for_update}}")),
            write: intern(format!("UPDATE {t} SET {v} = ? WHERE {k} = ?")),
            write_if_value: intern(format!("UPDATE {t} SET {v} = ? WHERE {k} = ? AND {v} = ?")),
            add_returning,
            add: intern(format!("UPDATE {t} SET {v} = {v} + ? WHERE {k} = ?")),
            take_if_at_least: intern(format!("UPDATE {t} SET {v} = {v} - ? WHERE {k} = ? AND {v} >= ?")),
            name: t,
        }
    }

    /// Whether this backend's add hands back its value by itself (no transaction needed around it).
    pub(crate) fn add_returns(&self) -> bool {
        self.add_returning.is_some()
    }

    /// No row has the key: the error a call answers.
    fn missing(&self, key: Arg<'_>) -> DbError {
        let key = match key {
            Arg::Int(k) => k.to_string(),
            Arg::Int32(k) => k.to_string(),
            Arg::Text(k) => format!("'{k}'"),
        };
        DbError::new(ErrorKind::NotFound, format!("{} has no row with key {key}", self.name))
    }
}

impl std::fmt::Debug for UserTableSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTableSql").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The dialect's SQL differences, for a backend known only at run time.
fn sql_of(backend: Backend) -> &'static Sql {
    match backend {
        Backend::Postgres => <postgres::Postgres as Dialect>::sql(),
        Backend::MySql => <mysql::MySql as Dialect>::sql(),
        Backend::Sqlite => <sqlite::Sqlite as Dialect>::sql(),
    }
}

/// The one statement with this text, made the first time it is asked for.
fn intern(text: String) -> &'static Statement {
    static STATEMENTS: OnceLock<Mutex<HashMap<String, &'static Statement>>> = OnceLock::new();
    let mut statements =
        STATEMENTS.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(statement) = statements.get(&text) {
        return statement;
    }
    // Kept for the life of the process, as a literal statement is: one per distinct text.
    let leaked: &'static str = Box::leak(text.clone().into_boxed_str());
    let statement: &'static Statement = Box::leak(Box::new(Statement::new(leaked)));
    statements.insert(text, statement);
    statement
}

impl Session {
    /// The row's value.
    pub(crate) async fn user_read(&mut self, t: &UserTableSql, key: Arg<'_>) -> Result<i64, DbError> {
        self.fetch_ints(t.read, &[key], 1).await?.map(|row| row[0]).ok_or_else(|| t.missing(key))
    }

    /// The row's value, the row locked until the transaction ends (SQLite: read under `BEGIN
    /// IMMEDIATE`, which holds the database's write lock).
    pub(crate) async fn user_read_for_update(&mut self, t: &UserTableSql, key: Arg<'_>) -> Result<i64, DbError> {
        self.fetch_ints(t.read_for_update, &[key], 1).await?.map(|row| row[0]).ok_or_else(|| t.missing(key))
    }

    /// Writes `value` as it is (what a read-modify-write computed).
    pub(crate) async fn user_write(&mut self, t: &UserTableSql, key: Arg<'_>, value: i64) -> Result<(), DbError> {
        match self.exec(t.write, &[Arg::Int(value), key]).await? {
            0 => Err(t.missing(key)),
            _ => Ok(()),
        }
    }

    /// Writes `value` only if the row still holds `seen`; whether it did.
    pub(crate) async fn user_write_if_value(
        &mut self,
        t: &UserTableSql,
        key: Arg<'_>,
        value: i64,
        seen: i64,
    ) -> Result<bool, DbError> {
        Ok(self.exec(t.write_if_value, &[Arg::Int(value), key, Arg::Int(seen)]).await? == 1)
    }

    /// Adds `by` in one statement; the new value. On MariaDB/MySQL the add and the read of the row it
    /// locked run in the caller's transaction, which must be open.
    pub(crate) async fn user_add(&mut self, t: &UserTableSql, key: Arg<'_>, by: i64) -> Result<i64, DbError> {
        if let Some(add_returning) = t.add_returning {
            let row = self.fetch_ints(add_returning, &[Arg::Int(by), key], 1).await;
            return self.autocommit_point(row)?.map(|row| row[0]).ok_or_else(|| t.missing(key));
        }
        if self.exec(t.add, &[Arg::Int(by), key]).await? == 0 {
            return Err(t.missing(key));
        }
        self.user_read(t, key).await
    }

    /// Takes `n` in one statement if at least `n` is there (`WHERE v >= n`); whether it did.
    pub(crate) async fn user_take_if_at_least(
        &mut self,
        t: &UserTableSql,
        key: Arg<'_>,
        n: i64,
    ) -> Result<bool, DbError> {
        Ok(self.exec(t.take_if_at_least, &[Arg::Int(n), key, Arg::Int(n)]).await? == 1)
    }

    /// Takes `n` with no guard of its own: `None` when the table's CHECK refused it.
    pub(crate) async fn user_take_checked_by_schema(
        &mut self,
        t: &UserTableSql,
        key: Arg<'_>,
        n: i64,
    ) -> Result<Option<bool>, DbError> {
        Ok(self.exec_unless_check(t.add, &[Arg::Int(-n), key]).await?.map(|rows| rows == 1))
    }
}
