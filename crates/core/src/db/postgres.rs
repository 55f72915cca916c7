//! PostgreSQL: what its SQL has of its own (transactions, the lock timeout, advisory locks, purging
//! keys, a new post's key), its rendering of the shared statements ([`SQL`]), and the meaning of its
//! SQLSTATEs.
//!
//! Never lets sqlx log a URL parameter it does not know: the value may be a password.

use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, PgConnection};

use super::connect::{self, ConnectError, Refusal};
use super::hosts::{Hosts, Watched, describe};
use super::sql::{Placeholder, Returning, Sql, Statements, Upsert};
use super::{ConnectOptions, Dialect, Isolation, LockMode, Pk, SessionTarget, TxMode, db_err};
use crate::error::{DbError, ErrorKind};

/// Marker for the PostgreSQL dialect.
pub(crate) struct Postgres;

/// The first half of our two-part advisory lock keys (`pg_advisory_xact_lock(int4, int4)`), so they
/// cannot collide with another application's keys or with each other: "RACE" in ASCII.
const ADVISORY_NAMESPACE: i32 = 0x5241_4345;

pub(super) async fn connect(options: &ConnectOptions) -> Result<(PgPool, Option<Watched>), ConnectError> {
    if options.url.is_multi_host() {
        return connect_hosts(options).await.map(|(pool, watched)| (pool, Some(watched)));
    }
    let connect = host_options(options, options.url.expose())?;
    connect::probe::<Postgres>(&connect, options, explain).await?;
    Ok((pool_options(options).connect_lazy_with(connect), None))
}

/// The driver's options for one host's URL.
fn host_options(options: &ConnectOptions, url: &str) -> Result<PgConnectOptions, ConnectError> {
    let connect = PgConnectOptions::from_str(&without_unrecognized_parameters(url))
        .map_err(|e| malformed(&options.url, &e))?
        .application_name("racelab");
    Ok(super::quiet_lock_waits(connect))
}

fn pool_options(options: &ConnectOptions) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .after_connect(super::prepare_connection::<Postgres>(options))
        .test_before_acquire(false)
        .before_acquire(super::pool::ping_if_idle::<<Postgres as Dialect>::Db>)
}

/// A URL with several hosts (or a `target_session_attrs`): the first host that qualifies, found now,
/// and a watcher that moves the pool to another when it stops qualifying (see [`super::hosts`]).
async fn connect_hosts(options: &ConnectOptions) -> Result<(PgPool, Watched), ConnectError> {
    let per_host =
        options.url.host_urls().iter().map(|url| host_options(options, url)).collect::<Result<Vec<_>, _>>()?;
    let target = options.url.session_target().unwrap_or(SessionTarget::Any);
    let hosts = Arc::new(Hosts::new(per_host, target));
    let (serving, conn) = match hosts.find().await {
        Ok(found) => found,
        Err(answers) => {
            // A refusal (no such database, a wrong password) is said in the server's words, as for
            // one host; otherwise what each host answered.
            connect::probe::<Postgres>(hosts.options(0), options, explain).await?;
            return Err(ConnectError::NoPrimary {
                url: options.url.redacted(),
                target: target.as_str(),
                hosts: describe(&hosts, &answers),
            });
        }
    };
    connect::probe::<Postgres>(hosts.options(serving), options, explain).await?;
    let prepare = Arc::new(super::prepare_connection::<Postgres>(options));
    let checking = hosts.clone();
    let pool = pool_options(options)
        .after_connect(move |conn, meta| {
            let prepare = prepare.clone();
            let hosts = checking.clone();
            Box::pin(async move {
                prepare(&mut *conn, meta).await?;
                if Hosts::qualifies(hosts.target(), conn).await? {
                    return Ok(());
                }
                // Opened on a host that has just stopped qualifying: refused, and the watcher told.
                hosts.recheck();
                Err(sqlx::Error::Protocol(format!(
                    "a new connection's host is read-only: target_session_attrs={} refuses it",
                    hosts.target().as_str()
                )))
            })
        })
        .connect_lazy_with(hosts.options(serving).clone());
    let watcher = hosts.watch(pool.clone(), serving, conn);
    Ok((pool, Watched { hosts, _watcher: watcher }))
}

/// Whether the server is a replica (in recovery): its sessions may only read.
pub(super) async fn read_only(c: &mut PgConnection) -> Result<bool, DbError> {
    sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut *c).await.map_err(db_err::<Postgres>)
}

/// The timeline the server writes WAL on (a replica: the one of its last checkpoint). A promotion starts
/// a new timeline at once, while `pg_control_checkpoint()` says so only after the next checkpoint: on a
/// primary the timeline is read from the name of the WAL file being written (its first 8 hex digits).
pub(super) async fn timeline(c: &mut PgConnection) -> Result<i64, DbError> {
    sqlx::query_scalar(
        "SELECT CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint())::BIGINT \
         ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::BIGINT END",
    )
    .fetch_one(&mut *c)
    .await
    .map_err(db_err::<Postgres>)
}

/// The URL parameters sqlx-postgres 0.9 reads (its `options/parse.rs`), besides `options[...]`.
const KNOWN_PARAMETERS: [&str; 18] = [
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// `raw` without the query parameters sqlx does not know, each named in a warning. sqlx ignores them
/// too, but its warning prints the value, and `PASSWORD=...` (upper case, so not read as the
/// password) or `sslpassword=...` would put a password in the log.
fn without_unrecognized_parameters(raw: &str) -> std::borrow::Cow<'_, str> {
    let Ok(mut url) = url::Url::parse(raw) else { return raw.into() };
    let known = |name: &str| KNOWN_PARAMETERS.contains(&name) || name.starts_with("options[");
    let (kept, dropped): (Vec<_>, Vec<_>) = url.query_pairs().into_owned().partition(|(name, _)| known(name));
    if dropped.is_empty() {
        return raw.into();
    }
    for (name, value) in &dropped {
        // A name without a value may be a password typed after the `?`: it is not repeated.
        if value.is_empty() {
            tracing::warn!("ignoring a URL parameter without a value");
        } else {
            tracing::warn!("ignoring the URL parameter `{name}`, which PostgreSQL's driver does not know");
        }
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    String::from(url).into()
}

/// sqlx's configuration errors can quote the URL: keep only its redacted form.
fn malformed(url: &super::DatabaseUrl, err: &sqlx::Error) -> ConnectError {
    let reason = match err {
        sqlx::Error::Configuration(inner) => super::redact(&inner.to_string()),
        other => super::redact(&other.to_string()),
    };
    ConnectError::Url(super::UrlError::Malformed { url: url.redacted(), reason })
}

/// What a refused connection means, by SQLSTATE, and the server's message.
pub(super) fn explain(err: &dyn DatabaseError) -> (Refusal, String) {
    let code = err.code().unwrap_or_default();
    let refusal = match code.as_ref() {
        "28P01" | "28000" | "42501" => Refusal::AccessDenied,
        "3D000" => Refusal::NoSuchDatabase { create_with: None },
        "53300" => Refusal::TooManyConnections,
        _ => Refusal::Other,
    };
    (refusal, connect::server_message(err, "SQLSTATE", &code))
}

/// PostgreSQL's SQL: `$n` parameters, `RETURNING`, `ON CONFLICT` naming the existing row through an alias.
const SQL: Sql = Sql {
    placeholder: Placeholder::Dollar,
    like: r#""like""#,
    now: "now()",
    upsert: Upsert::OnConflict { qualify: true },
    returning: Returning::Clause,
    bigint: ("(", ")::BIGINT"),
    duplicate_aborts_transaction: true,
    overflow_raises: true,
    row_locks: true,
    ident_quote: '"',
};

impl Dialect for Postgres {
    type Db = sqlx::Postgres;

    fn statements() -> &'static Statements {
        static STATEMENTS: LazyLock<Statements> = LazyLock::new(|| Statements::new(&SQL));
        &STATEMENTS
    }

    fn sql() -> &'static Sql {
        &SQL
    }

    const SLOT: usize = 0;
    const REFUSED_COMMIT_ENDS_TRANSACTION: bool = true;

    fn is_check_violation(err: &sqlx::Error) -> bool {
        err.as_database_error().and_then(|e| e.code()).as_deref() == Some("23514")
    }

    fn classify_database_error(err: &sqlx::Error) -> ErrorKind {
        let Some(code) = err.as_database_error().and_then(|e| e.code()) else {
            return ErrorKind::Other;
        };
        match code.as_ref() {
            "40001" => ErrorKind::SerializationFailure,
            "40P01" => ErrorKind::Deadlock,
            "55P03" => ErrorKind::LockTimeout,
            // numeric_value_out_of_range: a BIGINT sum (`version + 1`) past 2^63 - 1.
            "22003" => ErrorKind::CounterOverflow,
            "53300" => ErrorKind::PoolTimeout,
            "57P01" | "57P02" | "57P03" => ErrorKind::ConnectionLost,
            c if c.starts_with("08") => ErrorKind::ConnectionLost,
            _ => ErrorKind::Other,
        }
    }

    async fn begin(c: &mut PgConnection, mode: TxMode, _lock_timeout: Duration) -> Result<bool, DbError> {
        let sql = match mode {
            TxMode::DefaultIsolation | TxMode::RowLocking(_) => "BEGIN",
            TxMode::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        };
        c.execute(sqlx::raw_sql(sql)).await.map_err(db_err::<Postgres>)?;
        Ok(true)
    }

    async fn begin_at(
        c: &mut PgConnection,
        level: Isolation,
        _lock: Option<LockMode>,
        _lock_timeout: Duration,
    ) -> Result<bool, DbError> {
        let sql = match level {
            Isolation::ReadUncommitted => "BEGIN ISOLATION LEVEL READ UNCOMMITTED",
            Isolation::ReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED",
            Isolation::RepeatableRead => "BEGIN ISOLATION LEVEL REPEATABLE READ",
            Isolation::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        };
        c.execute(sqlx::raw_sql(sql)).await.map_err(db_err::<Postgres>)?;
        Ok(true)
    }

    async fn set_lock_timeout(c: &mut PgConnection, timeout: Duration) -> Result<(), DbError> {
        // 0 would mean "wait forever" to PostgreSQL; the shortest real timeout is 1 ms.
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
        sqlx::query("SELECT set_config('lock_timeout', $1, false)")
            .bind(format!("{ms}ms"))
            .execute(&mut *c)
            .await
            .map(drop)
            .map_err(db_err::<Postgres>)
    }

    async fn purge_idempotency_keys(c: &mut PgConnection, older_than: Duration, limit: i64) -> Result<u64, DbError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE idempotency_key IN (
                 SELECT idempotency_key FROM idempotency_keys
                 WHERE created_at <= now() - make_interval(secs => $1) LIMIT $2)",
        )
        .bind(older_than.as_secs_f64())
        .bind(limit)
        .execute(&mut *c)
        .await
        .map(|done| done.rows_affected())
        .map_err(db_err::<Postgres>)
    }

    async fn advisory_lock(c: &mut PgConnection, pk: Pk, _timeout: Duration) -> Result<(), DbError> {
        // Transaction-scoped: released by COMMIT or ROLLBACK on every path. The session's
        // lock_timeout bounds the wait.
        let key = i32::try_from(pk).map_err(|_| {
            DbError::new(ErrorKind::Unsupported, format!("advisory locks take post keys below 2^31, got {pk}"))
        })?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(ADVISORY_NAMESPACE)
            .bind(key)
            .execute(&mut *c)
            .await
            .map(drop)
            .map_err(db_err::<Postgres>)
    }

    async fn advisory_unlock(_c: &mut PgConnection, _pk: Pk) -> Result<(), DbError> {
        Ok(())
    }

    async fn create_post(c: &mut PgConnection) -> Result<Pk, DbError> {
        // A post inserted with an explicit key (the seed's pk = 1) does not advance the sequence,
        // so the sequence may hand out a taken key: take the next one.
        for _ in 0..1000 {
            match sqlx::query_scalar("INSERT INTO posts DEFAULT VALUES RETURNING pk").fetch_one(&mut *c).await {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                other => return other.map_err(db_err::<Postgres>),
            }
        }
        Err(DbError::new(ErrorKind::Other, "could not find a free post key after 1000 tries"))
    }

    async fn connection_id(c: &mut PgConnection) -> Result<Option<i64>, DbError> {
        sqlx::query_scalar("SELECT pg_backend_pid()::BIGINT")
            .fetch_one(&mut *c)
            .await
            .map(Some)
            .map_err(db_err::<Postgres>)
    }

    async fn server_version(c: &mut PgConnection) -> Result<String, DbError> {
        sqlx::query_scalar("SELECT version()").fetch_one(&mut *c).await.map_err(db_err::<Postgres>)
    }
}
