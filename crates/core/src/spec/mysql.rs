//! MariaDB (InnoDB), for the spec runner: blocking read from the server, never from a timer, and a
//! step cancelled with `KILL QUERY`.
//!
//! A session is blocked when InnoDB's monitor (`SHOW ENGINE INNODB STATUS`, printed afresh on every
//! call) shows its connection's transaction in `LOCK WAIT` (a row lock), or when the process list
//! shows the connection waiting for a metadata, table or user lock. Not
//! `information_schema.innodb_lock_waits` / `innodb_trx`: InnoDB refreshes that cache only after
//! 0.1 s without any reader on the whole server, so a runner polling it keeps it frozen and a lock
//! wait goes unseen (what `racelab anomalies` found, and reads the monitor for too).
//!
//! A step's statements go as one text-protocol query (several statements in one string), each value
//! coming back as the server's text, as on PostgreSQL.

use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlRow};
use sqlx::{Connection, Decode, MySql, MySqlConnection, Row, ValueRef};

use super::backend::SpecBackend;
use super::exec::{self, Text};
use super::report::{Answer, StepError};
use crate::Backend;
use crate::db::DatabaseUrl;
use crate::db::innodb::innodb_status_shows_lock_wait;

/// How long [`MariaDb::settle`] waits for a cluster's nodes to have applied the same write sets.
const SETTLE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// MariaDB's (and MySQL's) sessions.
pub(crate) struct MariaDb;

const TEXT: Text<MySql> = Text { value, error: step_error };

impl SpecBackend for MariaDb {
    type Conn = MySqlConnection;

    async fn connect(url: &DatabaseUrl, _name: &str) -> Result<MySqlConnection, sqlx::Error> {
        let options = MySqlConnectOptions::from_str(url.expose())?;
        MySqlConnection::connect_with(&options).await
    }

    async fn session_id(conn: &mut MySqlConnection) -> Result<i64, sqlx::Error> {
        let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()").fetch_one(conn).await?;
        Ok(id as i64)
    }

    async fn execute(conn: &mut MySqlConnection, sql: &str, last_only: bool) -> Answer {
        exec::execute(conn, sql, last_only, &TEXT).await
    }

    /// Every kind of statement (reads, updates and deletes, inserts) first waits until the node
    /// applied what the cluster committed before it (`wsrep_sync_wait = 7`, as `racelab anomalies`
    /// sets it on a cluster).
    async fn join_cluster(conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
        sqlx::raw_sql("SET SESSION wsrep_sync_wait = 7").execute(conn).await?;
        Ok(())
    }

    /// Galera applies a write set on the other nodes after its commit answered: until every node's
    /// `wsrep_last_committed` is the same, asked again at once (a node applies in well under a
    /// second; [`SETTLE_DEADLINE`] bounds a node that lags for good, and the step is then sent
    /// anyway, meeting whatever state that node has).
    async fn settle(controls: &mut [MySqlConnection]) -> Result<(), sqlx::Error> {
        let start = std::time::Instant::now();
        loop {
            let mut seqnos = Vec::with_capacity(controls.len());
            for control in controls.iter_mut() {
                let seqno: Option<String> = sqlx::query_scalar(
                    "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                     WHERE VARIABLE_NAME = 'WSREP_LAST_COMMITTED'",
                )
                .fetch_optional(&mut *control)
                .await?;
                seqnos.push(seqno);
            }
            if seqnos.iter().all(|s| *s == seqnos[0]) || start.elapsed() > SETTLE_DEADLINE {
                return Ok(());
            }
            tokio::task::yield_now().await;
        }
    }

    async fn is_blocked(control: &mut MySqlConnection, id: i64, _ids: &[i64]) -> Result<bool, sqlx::Error> {
        let status: String =
            sqlx::raw_sql("SHOW ENGINE INNODB STATUS").fetch_one(&mut *control).await?.try_get("Status")?;
        if innodb_status_shows_lock_wait(&status, id) {
            return Ok(true);
        }
        let state: Option<String> = sqlx::query_scalar("SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = ?")
            .bind(id)
            .fetch_optional(&mut *control)
            .await?
            .flatten();
        Ok(state.is_some_and(|s| waits_for_a_lock(&s)))
    }

    async fn cancel(control: &mut MySqlConnection, id: i64) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("KILL QUERY {id}"))).execute(control).await?;
        Ok(())
    }

    fn step_error(err: &sqlx::Error) -> StepError {
        step_error(err)
    }

    async fn close(conn: MySqlConnection) {
        let _ = conn.close().await;
    }
}

/// A value as the server's text (the text protocol sends every value so).
fn value(row: &MySqlRow, i: usize) -> Option<String> {
    let value = row.try_get_raw(i).ok()?;
    if value.is_null() {
        return None;
    }
    <String as Decode<MySql>>::decode(value).ok()
}

/// The server's message, its error number as the code, and racelab's kind.
fn step_error(err: &sqlx::Error) -> StepError {
    let kind = crate::db::classify(Backend::MySql, err);
    match err.as_database_error().and_then(|e| e.try_downcast_ref::<MySqlDatabaseError>()) {
        Some(my) => StepError {
            severity: "ERROR".to_owned(),
            message: my.message().to_owned(),
            code: Some(my.number().to_string()),
            kind,
        },
        None => StepError { severity: "ERROR".to_owned(), message: err.to_string(), code: None, kind },
    }
}

/// A process-list state of a connection waiting for a lock other than a row lock: a metadata lock
/// (`Waiting for table metadata lock`), a table lock, a `GET_LOCK` (`User lock`).
fn waits_for_a_lock(state: &str) -> bool {
    (state.starts_with("Waiting for") && state.contains("lock")) || state == "User lock"
}

#[cfg(test)]
mod tests {
    use super::waits_for_a_lock;

    #[test]
    fn metadata_and_user_lock_waits_are_waits() {
        assert!(waits_for_a_lock("Waiting for table metadata lock"));
        assert!(waits_for_a_lock("User lock"));
        assert!(!waits_for_a_lock("Updating"));
        assert!(!waits_for_a_lock("Sending data"));
    }
}
