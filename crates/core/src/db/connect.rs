//! Connecting, and saying what is true when it fails: nothing answered, or the server answered and
//! refused (wrong password, no such database, no connection left), or an init statement failed.
//!
//! A pool hides all of these behind "pool timed out" after retrying for its whole acquire timeout, and
//! logs each retry of a failing init statement. So one direct connection comes first: it fails at
//! once with the server's own answer, and it runs the init statements once, so that a bad one is
//! reported once, with its text and the server's message.
//!
//! Never puts a password in an error: URLs are redacted, and the driver's messages, which may quote
//! the URL, are redacted too.

use std::time::Duration;

use sqlx::Executor;
use sqlx::error::DatabaseError;

use super::{Backend, Conn, ConnectOptions, DatabaseUrl, Dialect, UrlError};
use crate::error::{DbError, ErrorKind};

/// Connecting failed. Every message names the URL without its password, and the server's message
/// without the driver's decorations.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Url(#[from] UrlError),
    /// Nothing answered at that address: connection refused, no such host, a timeout, TLS.
    #[error("cannot connect to {url}: {message}")]
    Unreachable { url: String, backend: Backend, message: String },
    /// The server answered, and refused the connection.
    #[error("{url} refused the connection: {message}")]
    Refused { url: String, refusal: Refusal, message: String },
    /// A statement of [`ConnectOptions::init_statements`] failed on a new connection.
    #[error("the init statement `{statement}` failed on {url}: {message}")]
    InitStatement { url: String, statement: String, message: String },
    #[error("cannot apply migrations to {url}: {source}")]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A Galera node that answers but refuses queries (1047): outside the Primary component, or not
    /// yet prepared.
    #[error("node not ready: {state} ({url})")]
    NodeNotReady { url: String, state: super::NodeState },
    /// No host of a URL with several hosts (or a `target_session_attrs`) qualifies: each is read-only
    /// (a replica) or does not answer, as `hosts` says, one by one.
    #[error("no host of {url} accepts writes (target_session_attrs={target}): {hosts}")]
    NoPrimary { url: String, target: &'static str, hosts: String },
    /// The one server of the URL is a read-only replica (in recovery): racelab writes.
    #[error(
        "{url} is a read-only replica (in recovery): racelab writes, so it needs the primary; give every host of the \
         cluster with target_session_attrs=read-write (postgres://user@h1:5432,h2:5432/db?target_session_attrs=read-write)"
    )]
    ReadOnlyReplica { url: String },
    /// The address answers in another database's protocol: a PostgreSQL URL on MariaDB's port, or
    /// the reverse.
    #[error("{url}: the server there speaks the {} protocol, not {}'s", product(*found), product(*expected))]
    OtherProtocol { url: String, expected: Backend, found: Backend },
    /// The SQLite file was opened, and cannot be used: its disk is full, it is no SQLite database, or
    /// it may only be read. Never taken for a race with another process, never retried.
    #[error("cannot use the SQLite database {path}: {problem}: {message}")]
    SqliteFile { url: String, path: String, problem: FileProblem, message: String },
}

/// A backend's name as its users know it.
pub fn product(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "PostgreSQL",
        Backend::MySql => "MariaDB/MySQL",
        Backend::Sqlite => "SQLite",
    }
}

/// Why a SQLite database file cannot be used, from SQLite's primary result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileProblem {
    /// SQLITE_FULL (13): the disk holding it is full (or the database reached its
    /// `max_page_count`); or SQLITE_IOERR_SHMSIZE (4874): the WAL index (`-shm`) could not be
    /// grown, which is how a full disk shows when the file is opened.
    DiskFull,
    /// SQLITE_NOTADB (26) or SQLITE_CORRUPT (11): the file is not a SQLite database, or a damaged one.
    NotADatabase,
    /// SQLITE_READONLY (8): the file, its directory or its file system may only be read (or the URL
    /// says `mode=ro`).
    ReadOnly,
}

impl FileProblem {
    /// The problem a SQLite result code (primary or extended) names, if it is one of these.
    pub(crate) fn of_code(code: i32) -> Option<Self> {
        const IOERR_SHMSIZE: i32 = 10 | (19 << 8);
        if code == IOERR_SHMSIZE {
            return Some(FileProblem::DiskFull);
        }
        match code & 0xff {
            13 => Some(FileProblem::DiskFull),
            11 | 26 => Some(FileProblem::NotADatabase),
            8 => Some(FileProblem::ReadOnly),
            _ => None,
        }
    }

    /// The problem of a driver error from a SQLite database, if it is one of these.
    pub(crate) fn of_error(err: &sqlx::Error) -> Option<Self> {
        let code = err.as_database_error()?.code()?.parse::<i32>().ok()?;
        Self::of_code(code)
    }
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileProblem::DiskFull => "the disk is full",
            FileProblem::NotADatabase => "the file is not a usable SQLite database (not one, or damaged)",
            FileProblem::ReadOnly => "it may only be read here (a read-only file, directory or file system)",
        })
    }
}

/// The [`ConnectError::SqliteFile`] that a driver error from SQLite means, if it means one.
pub(crate) fn sqlite_file_error(url: &DatabaseUrl, err: &sqlx::Error) -> Option<ConnectError> {
    let problem = FileProblem::of_error(err)?;
    let message = match err.as_database_error() {
        Some(db) => server_message(db, "SQLite code", &db.code().unwrap_or_default()),
        None => super::redact(&err.to_string()),
    };
    let path = url.sqlite_path().unwrap_or_else(|| url.redacted());
    Some(ConnectError::SqliteFile { url: url.redacted(), path, problem, message })
}

/// Why a server that answered refused a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown user, wrong password, or no right to the database (PostgreSQL 28P01, 28000, 42501;
    /// MySQL 1044, 1045, 1698).
    AccessDenied,
    /// The database does not exist (PostgreSQL 3D000, MySQL 1049). Carries the command that creates
    /// it, where the URL names a server.
    NoSuchDatabase { create_with: Option<String> },
    /// No connection left: the server's `max_connections`, or a limit on the role or user
    /// (PostgreSQL 53300; MySQL 1040, 1203, 1226).
    TooManyConnections,
    /// Anything else the server said.
    Other,
}

/// What a backend makes of a database error met while connecting: the refusal it means and the
/// server's message with its code.
pub(crate) type Explain = fn(&dyn DatabaseError) -> (Refusal, String);

/// The server's own words and code: "role \"x\" does not exist (SQLSTATE 28000)". PostgreSQL's
/// `Display` appends the server's source line ("at line 948"), which says nothing to a user.
pub(crate) fn server_message(err: &dyn DatabaseError, code_label: &str, code: &str) -> String {
    format!("{} ({code_label} {code})", err.message())
}

/// A driver error met while connecting, as what it means.
pub(crate) fn connect_error(url: &DatabaseUrl, err: sqlx::Error, explain: Explain) -> ConnectError {
    if url.backend() == Backend::Sqlite
        && let Some(unusable) = sqlite_file_error(url, &err)
    {
        return unusable;
    }
    match err {
        // A file that cannot be opened: nobody refused anything.
        sqlx::Error::Database(db) if url.backend() == Backend::Sqlite => {
            ConnectError::Unreachable { url: url.redacted(), backend: Backend::Sqlite, message: explain(db.as_ref()).1 }
        }
        sqlx::Error::Database(db) => {
            let (refusal, message) = explain(db.as_ref());
            let refusal = match refusal {
                Refusal::NoSuchDatabase { .. } => {
                    Refusal::NoSuchDatabase { create_with: url.create_database_command() }
                }
                other => other,
            };
            ConnectError::Refused { url: url.redacted(), refusal, message }
        }
        other => ConnectError::Unreachable {
            url: url.redacted(),
            backend: url.backend(),
            message: super::redact(&other.to_string()),
        },
    }
}

/// One direct connection with the pool's own settings: the lock timeout and every init statement run
/// once on it, then it is closed.
pub(crate) async fn probe<D: Dialect>(
    connect: &<Conn<D::Db> as sqlx::Connection>::Options,
    options: &ConnectOptions,
    explain: Explain,
) -> Result<(), ConnectError>
where
    for<'c> &'c mut Conn<D::Db>: Executor<'c, Database = D::Db>,
{
    use sqlx::{ConnectOptions as _, Connection as _};
    let url = &options.url;
    let timeout = options.acquire_timeout;
    let mut conn = match connect_or_other_protocol(url, timeout, connect.connect()).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => {
            // A driver that met bytes it cannot read (PostgreSQL's reads MariaDB's greeting as a
            // message it does not expect): is it another database's server?
            if !matches!(err, sqlx::Error::Database(_))
                && let Some(found) = other_protocol(url, Duration::from_secs(1)).await
            {
                return Err(ConnectError::OtherProtocol { url: url.redacted(), expected: url.backend(), found });
            }
            return Err(connect_error(url, err, explain));
        }
        Err(Some(found)) => {
            return Err(ConnectError::OtherProtocol { url: url.redacted(), expected: url.backend(), found });
        }
        Err(None) => {
            return Err(ConnectError::Unreachable {
                url: url.redacted(),
                backend: url.backend(),
                message: format!("no answer within {}", seconds(timeout)),
            });
        }
    };
    let init_failed = |statement: String, err: sqlx::Error| {
        let message = match &err {
            sqlx::Error::Database(db) => explain(db.as_ref()).1,
            other => super::redact(&other.to_string()),
        };
        ConnectError::InitStatement { url: url.redacted(), statement, message }
    };
    if let Err(err) = D::set_lock_timeout(&mut conn, options.lock_timeout).await {
        return Err(init_failed(
            format!("(the lock timeout, {})", seconds(options.lock_timeout)),
            err.into_driver_error(),
        ));
    }
    for sql in &options.init_statements {
        if let Err(err) = conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))).await {
            return Err(init_failed(sql.clone(), err));
        }
    }
    // The answer was had; a failed goodbye changes nothing.
    let _ = conn.close().await;
    Ok(())
}

/// How long a connection to a server may stay silent before [`other_protocol`] asks what it speaks.
/// MariaDB greets a client at once; PostgreSQL waits for the client to speak first, so a MariaDB
/// driver on PostgreSQL's port would otherwise wait for its whole timeout.
const SILENT_FOR: Duration = Duration::from_secs(1);

/// `connect` within `timeout`; `Err(None)` when it timed out, and `Err(Some(backend))` as soon as the
/// address turns out to speak another protocol: on MariaDB/MySQL URLs the server is asked (see
/// [`other_protocol`]) once the connection has been silent for [`SILENT_FOR`].
async fn connect_or_other_protocol<T>(
    url: &DatabaseUrl,
    timeout: Duration,
    connect: impl std::future::Future<Output = T>,
) -> Result<T, Option<Backend>> {
    let connect = tokio::time::timeout(timeout, connect);
    tokio::pin!(connect);
    if url.backend() == Backend::MySql {
        tokio::select! {
            done = &mut connect => return done.map_err(|_| None),
            () = tokio::time::sleep(SILENT_FOR.min(timeout)) => {}
        }
        // The driver's own connection has been silent already: the server is given less time here.
        let ask = other_protocol(url, Duration::from_millis(250));
        tokio::pin!(ask);
        tokio::select! {
            done = &mut connect => return done.map_err(|_| None),
            found = &mut ask => if let Some(found) = found { return Err(Some(found)) },
        }
    }
    connect.await.map_err(|_| None)
}

/// Which other database's protocol the server at `url`'s address speaks, if it is one: a MariaDB or
/// MySQL server greets first (a packet of sequence 0 holding protocol version 10, or an error
/// packet); a PostgreSQL server stays silent for `greeting_wait`, and answers `S` or `N` to an SSL
/// request. Asked on a connection of its own, for at most 1 s more than `greeting_wait` (and 1 s to
/// connect); `None` when it tells nothing (or the URL names a socket).
pub(crate) async fn other_protocol(url: &DatabaseUrl, greeting_wait: Duration) -> Option<Backend> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const PG_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let parsed = url::Url::parse(url.expose()).ok()?;
    if parsed.query_pairs().any(|(name, _)| matches!(name.as_ref(), "host" | "hostaddr" | "socket")) {
        return None;
    }
    let host = parsed.host_str().filter(|h| !h.is_empty() && !h.starts_with('%'))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed.port().unwrap_or(match url.backend() {
        Backend::Postgres => 5432,
        _ => 3306,
    });
    let step = Duration::from_secs(1);
    let mut stream = tokio::time::timeout(step, tokio::net::TcpStream::connect((host, port))).await.ok()?.ok()?;
    let mut greeting = [0u8; 5];
    match tokio::time::timeout(greeting_wait, stream.read_exact(&mut greeting)).await {
        Ok(Ok(_)) => {
            let mysql = greeting[3] == 0 && matches!(greeting[4], 10 | 0xff);
            return (mysql && url.backend() != Backend::MySql).then_some(Backend::MySql);
        }
        Ok(Err(_)) => return None,
        Err(_) => {}
    }
    // Silent: a server that waits for its client to speak, as PostgreSQL does.
    stream.write_all(&PG_SSL_REQUEST).await.ok()?;
    let mut answer = [0u8; 1];
    tokio::time::timeout(step, stream.read_exact(&mut answer)).await.ok()?.ok()?;
    (matches!(&answer, b"S" | b"N") && url.backend() != Backend::Postgres).then_some(Backend::Postgres)
}

/// How long a pool may take to hand out a connection before [`refusal`] asks the server why.
pub(crate) const REFUSAL_CHECK_AFTER: Duration = Duration::from_millis(500);

/// Whether the server refuses a new connection right now, asked with one direct connection of the
/// pool's own settings: the refusal, in the server's words, or `None` if it accepts (or does not
/// answer, which the pool reports itself).
pub(crate) async fn refusal<D: Dialect>(pool: &sqlx::Pool<D::Db>, explain: Explain) -> Option<DbError> {
    use sqlx::{ConnectOptions as _, Connection as _};
    let options = pool.connect_options();
    match tokio::time::timeout(pool.options().get_acquire_timeout(), options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            None
        }
        Ok(Err(sqlx::Error::Database(db))) => {
            let (refusal, message) = explain(db.as_ref());
            if refusal != Refusal::TooManyConnections {
                return Some(DbError::new(ErrorKind::Other, format!("the server refused a new connection: {message}")));
            }
            // PostgreSQL's own words for it ("sorry, too many clients already") name no limit.
            Some(DbError::new(
                ErrorKind::PoolTimeout,
                format!(
                    "the server refused a new connection: {message}; its max_connections (or the user's connection \
                     limit) is reached: close other clients, use fewer workers, or raise the limit"
                ),
            ))
        }
        _ => None,
    }
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}
