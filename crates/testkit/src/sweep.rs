//! Sweeping up the test databases of tests that never got to drop theirs: a test process that nextest
//! killed at its timeout (or any killed process) runs no destructor.
//!
//! Only what this kit made is touched: names of the form `racelab_t_<unix seconds>_<20 hex digits>`
//! ([`crate::NAME_PREFIX`]), made before the given time, and on a server only if nobody is connected
//! to it. Anybody else's database, and a test database still in use (another run's), is left alone.
//! The same goes for the accounts of limited connections ([`crate::limited_account`]), named alike:
//! dropped after the databases, once nobody is connected as them.

use std::time::SystemTime;

use racelab_core::Backend;
use racelab_core::db::redact;
use sqlx::{AssertSqlSafe, Connection, Executor};

use crate::{NAME_PREFIX, made_at, server_url};

/// What a sweep did.
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Databases (and SQLite files) and accounts dropped, as `backend name`.
    pub dropped: Vec<String>,
    /// Old test databases and accounts left alone because somebody is connected to (or as) them.
    pub in_use: Vec<String>,
    /// What could not be looked at (a server that does not answer), in words.
    pub problems: Vec<String>,
}

/// Drops every test database made before `before`, on both servers and in the temporary directory.
pub async fn sweep(before: SystemTime) -> SweepReport {
    let mut report = SweepReport::default();
    for backend in [Backend::Postgres, Backend::MySql] {
        let (var, default) = server_url(backend);
        let url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        let swept = match backend {
            Backend::Postgres => sweep_postgres(&url, before, &mut report).await,
            _ => sweep_mysql(&url, before, &mut report).await,
        };
        if let Err(err) = swept {
            report.problems.push(format!("{backend} at {}: {err}", redact(&url)));
        }
    }
    sweep_files(&std::env::temp_dir(), before, &mut report);
    report
}

fn old(name: &str, before: SystemTime) -> bool {
    made_at(name).is_some_and(|made| made < before)
}

/// `LIKE` pattern of the names, `_` escaped.
const PATTERN: &str = r"racelab\_t\_%";

async fn sweep_postgres(url: &str, before: SystemTime, report: &mut SweepReport) -> Result<(), sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
        .bind(PATTERN)
        .fetch_all(&mut conn)
        .await?;
    for name in names.into_iter().filter(|n| old(n, before)) {
        // Without FORCE: PostgreSQL refuses (55006) while anybody is connected, which is the check.
        match conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))).await {
            Ok(_) => report.dropped.push(format!("postgres {name}")),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("55006") => {
                report.in_use.push(format!("postgres {name}"));
            }
            Err(err) => return Err(err),
        }
    }
    let roles: Vec<String> = sqlx::query_scalar("SELECT rolname FROM pg_roles WHERE rolname LIKE $1")
        .bind(PATTERN)
        .fetch_all(&mut conn)
        .await?;
    for name in roles.into_iter().filter(|n| old(n, before)) {
        let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE usename = $1")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
        if sessions > 0 {
            report.in_use.push(format!("postgres role {name}"));
            continue;
        }
        // What it owned was in its test database, dropped above; 2BP01 means some is left elsewhere.
        match conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("DROP ROLE IF EXISTS {name}")))).await {
            Ok(_) => report.dropped.push(format!("postgres role {name}")),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("2BP01") => {
                report.in_use.push(format!("postgres role {name} (it owns objects in another database)"));
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

async fn sweep_mysql(url: &str, before: SystemTime, report: &mut SweepReport) -> Result<(), sqlx::Error> {
    let mut conn = sqlx::MySqlConnection::connect(url).await?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(schema_name AS CHAR) FROM information_schema.schemata WHERE schema_name LIKE ?",
    )
    .bind(PATTERN)
    .fetch_all(&mut conn)
    .await?;
    for name in names.into_iter().filter(|n| old(n, before)) {
        // MariaDB drops a database under its users' feet: look first.
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.processlist WHERE db = ?")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
        if users > 0 {
            report.in_use.push(format!("mysql {name}"));
            continue;
        }
        conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))).await?;
        report.dropped.push(format!("mysql {name}"));
    }
    let users: Vec<String> = sqlx::query_scalar("SELECT DISTINCT CAST(user AS CHAR) FROM mysql.user WHERE user LIKE ?")
        .bind(PATTERN)
        .fetch_all(&mut conn)
        .await?;
    for name in users.into_iter().filter(|n| old(n, before)) {
        let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.processlist WHERE user = ?")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
        if sessions > 0 {
            report.in_use.push(format!("mysql user {name}"));
            continue;
        }
        conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("DROP USER IF EXISTS '{name}'@'%'")))).await?;
        report.dropped.push(format!("mysql user {name}"));
    }
    Ok(())
}

/// SQLite test files (`<name>.db` and its `-wal`, `-shm`, `-journal`, `-anomalies.lock`).
fn sweep_files(dir: &std::path::Path, before: SystemTime, report: &mut SweepReport) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else { continue };
        if !file_name.starts_with(NAME_PREFIX) {
            continue;
        }
        let Some((name, _suffix)) = file_name.split_once(".db") else { continue };
        if old(name, before) && std::fs::remove_file(entry.path()).is_ok() {
            report.dropped.push(format!("sqlite {file_name}"));
        }
    }
}
