//! PostgreSQL: the SQL of every operation and the meaning of its SQLSTATEs.

use std::str::FromStr;
use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, PgConnection};

use super::connect::{self, ConnectError, Refusal};
use super::idempotency::StoredResponse;
use super::{
    ConnectOptions, Counter, Dialect, LockMode, Pk, PostRow, TxMode, db_err, not_found, read_counter, slot_error,
};
use crate::error::{DbError, ErrorKind, classify_driver_error};

/// Marker for the PostgreSQL dialect.
pub(crate) struct Postgres;

/// The first half of our two-part advisory lock keys (`pg_advisory_xact_lock(int4, int4)`), so they
/// cannot collide with another application's keys or with each other: "RACE" in ASCII.
const ADVISORY_NAMESPACE: i32 = 0x5241_4345;

pub(super) async fn connect(options: &ConnectOptions) -> Result<PgPool, ConnectError> {
    let connect = PgConnectOptions::from_str(&without_unrecognized_parameters(options.url.expose()))
        .map_err(|e| malformed(&options.url, &e))?
        .application_name("racelab");
    let connect = super::quiet_lock_waits(connect);
    connect::probe::<Postgres>(&connect, options, explain).await?;
    Ok(PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .after_connect(super::prepare_connection::<Postgres>(options))
        .connect_lazy_with(connect))
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

impl Dialect for Postgres {
    type Db = sqlx::Postgres;

    fn classify(err: &sqlx::Error) -> ErrorKind {
        if let Some(kind) = classify_driver_error(err) {
            return kind;
        }
        let Some(code) = err.as_database_error().and_then(|e| e.code()) else {
            return ErrorKind::Other;
        };
        match code.as_ref() {
            "40001" => ErrorKind::SerializationFailure,
            "40P01" => ErrorKind::Deadlock,
            "55P03" => ErrorKind::LockTimeout,
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

    async fn commit(c: &mut PgConnection) -> Result<(), DbError> {
        c.execute(sqlx::raw_sql("COMMIT")).await.map(drop).map_err(db_err::<Postgres>)
    }

    async fn rollback(c: &mut PgConnection) -> Result<(), DbError> {
        c.execute(sqlx::raw_sql("ROLLBACK")).await.map(drop).map_err(db_err::<Postgres>)
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

    async fn read(c: &mut PgConnection, pk: Pk) -> Result<Counter, DbError> {
        let row = sqlx::query_as(r#"SELECT "like", version FROM posts WHERE pk = $1"#)
            .bind(pk)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_err::<Postgres>)?;
        read_counter(row, pk)
    }

    async fn read_for_update(c: &mut PgConnection, pk: Pk, mode: LockMode) -> Result<Counter, DbError> {
        let sql = match mode {
            LockMode::Wait => r#"SELECT "like", version FROM posts WHERE pk = $1 FOR UPDATE"#,
            LockMode::NoWait => r#"SELECT "like", version FROM posts WHERE pk = $1 FOR UPDATE NOWAIT"#,
            LockMode::SkipLocked => r#"SELECT "like", version FROM posts WHERE pk = $1 FOR UPDATE SKIP LOCKED"#,
        };
        let row: Option<(i64, i64)> = sqlx::query_as(sql)
            .bind(pk)
            .fetch_optional(&mut *c)
            .await
            .map_err(|e| super::relabel_for_lock_mode(db_err::<Postgres>(e), mode))?;
        super::locked_row::<Self>(c, pk, row, mode).await
    }

    async fn load(c: &mut PgConnection, pk: Pk) -> Result<PostRow, DbError> {
        let row = sqlx::query_as(r#"SELECT pk, "like", version, modified_at FROM posts WHERE pk = $1"#)
            .bind(pk)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_err::<Postgres>)?;
        row.map(|(pk, like, version, modified_at)| PostRow { pk, like, version, modified_at })
            .ok_or_else(|| not_found(pk))
    }

    async fn write(c: &mut PgConnection, pk: Pk, like: i64) -> Result<(), DbError> {
        let done =
            sqlx::query(r#"UPDATE posts SET "like" = $2, version = version + 1, modified_at = now() WHERE pk = $1"#)
                .bind(pk)
                .bind(like)
                .execute(&mut *c)
                .await
                .map_err(db_err::<Postgres>)?;
        if done.rows_affected() == 0 { Err(not_found(pk)) } else { Ok(()) }
    }

    async fn write_if_version(c: &mut PgConnection, pk: Pk, like: i64, expected_version: i64) -> Result<bool, DbError> {
        let done = sqlx::query(
            r#"UPDATE posts SET "like" = $2, version = version + 1, modified_at = now()
               WHERE pk = $1 AND version = $3"#,
        )
        .bind(pk)
        .bind(like)
        .bind(expected_version)
        .execute(&mut *c)
        .await
        .map_err(db_err::<Postgres>)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_if_version(c: &mut PgConnection, pk: Pk, expected_version: i64) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM posts WHERE pk = $1 AND version = $2")
            .bind(pk)
            .bind(expected_version)
            .execute(&mut *c)
            .await
            .map_err(db_err::<Postgres>)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_idempotency_key(c: &mut PgConnection, key: &str, fingerprint: &str) -> Result<bool, DbError> {
        // The answer's placeholders are replaced before this transaction commits: no one else sees them.
        // DO NOTHING rather than a unique violation, which would abort the transaction: a batch goes on
        // with its other likes. It still waits for a transaction that inserted the same key to end.
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (idempotency_key, fingerprint, status, body) VALUES ($1, $2, 0, '')
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(key)
        .bind(fingerprint)
        .execute(&mut *c)
        .await
        .map_err(db_err::<Postgres>)?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn save_idempotent_response(c: &mut PgConnection, key: &str, status: u16, body: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE idempotency_keys SET status = $1, body = $2 WHERE idempotency_key = $3")
            .bind(i32::from(status))
            .bind(body)
            .bind(key)
            .execute(&mut *c)
            .await
            .map(drop)
            .map_err(db_err::<Postgres>)
    }

    async fn idempotent_response(c: &mut PgConnection, key: &str) -> Result<Option<StoredResponse>, DbError> {
        let row: Option<(String, i32, String)> =
            sqlx::query_as("SELECT fingerprint, status, body FROM idempotency_keys WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(&mut *c)
                .await
                .map_err(db_err::<Postgres>)?;
        Ok(row.map(|(fingerprint, status, body)| StoredResponse::new(fingerprint, status, body)))
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

    async fn increment_by(c: &mut PgConnection, pk: Pk, by: i64) -> Result<i64, DbError> {
        let like: Option<i64> = sqlx::query_scalar(
            r#"UPDATE posts SET "like" = "like" + $2, version = version + 1, modified_at = now()
               WHERE pk = $1 RETURNING "like""#,
        )
        .bind(pk)
        .bind(by)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_err::<Postgres>)?;
        like.ok_or_else(|| not_found(pk))
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

    async fn increment_slot_by(c: &mut PgConnection, pk: Pk, slot: u16, by: i64) -> Result<i64, DbError> {
        sqlx::query_scalar(
            r#"INSERT INTO post_slots AS s (post, slot, "like", version) VALUES ($1, $2, $3, 1)
               ON CONFLICT (post, slot) DO UPDATE SET "like" = s."like" + $3, version = s.version + 1
               RETURNING "like""#,
        )
        .bind(pk)
        .bind(i32::from(slot))
        .bind(by)
        .fetch_one(&mut *c)
        .await
        .map_err(|e| slot_error::<Postgres>(e, pk))
    }

    async fn read_total(c: &mut PgConnection, pk: Pk) -> Result<Counter, DbError> {
        // One statement, so one snapshot: the post and its slots as of the same moment.
        let row = sqlx::query_as(
            r#"SELECT (p."like" + COALESCE(SUM(s."like"), 0))::BIGINT, (p.version + COALESCE(SUM(s.version), 0))::BIGINT
               FROM posts p LEFT JOIN post_slots s ON s.post = p.pk
               WHERE p.pk = $1 GROUP BY p.pk"#,
        )
        .bind(pk)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_err::<Postgres>)?;
        read_counter(row, pk)
    }

    async fn clear_slots(c: &mut PgConnection, pk: Pk) -> Result<(), DbError> {
        sqlx::query("DELETE FROM post_slots WHERE post = $1")
            .bind(pk)
            .execute(&mut *c)
            .await
            .map(drop)
            .map_err(db_err::<Postgres>)
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

    async fn ensure_post(c: &mut PgConnection, pk: Pk) -> Result<(), DbError> {
        sqlx::query("INSERT INTO posts (pk) VALUES ($1) ON CONFLICT (pk) DO NOTHING")
            .bind(pk)
            .execute(&mut *c)
            .await
            .map(drop)
            .map_err(db_err::<Postgres>)
    }

    async fn reset_post(c: &mut PgConnection, pk: Pk) -> Result<(), DbError> {
        sqlx::query(
            r#"INSERT INTO posts (pk, "like", version) VALUES ($1, 0, 0)
               ON CONFLICT (pk) DO UPDATE SET "like" = 0, version = 0, modified_at = now()"#,
        )
        .bind(pk)
        .execute(&mut *c)
        .await
        .map(drop)
        .map_err(db_err::<Postgres>)
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
