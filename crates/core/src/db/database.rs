//! [`Database`]: the pool of one database and the entry point of the library: connect, migrate,
//! hand out sessions, and the few one-statement conveniences (create, reset, read a post).
//!
//! Setup statements (creating a post, migrations) retry Galera's certification conflicts here; the
//! strategies' own retries are [`crate::retry`]'s. Never prints the URL unredacted.

use std::future::Future;
use std::time::Duration;

use super::connect::{self, ConnectError};
use super::hosts::{self, Hosts, Watched};
use super::session::PooledConn;
use super::warm::Warm;
use super::{Backend, ConnectOptions, Counter, DatabaseUrl, Dialect, NodeState, Pk, PostRow, Session, db_err};
use super::{HostState, mysql, postgres, sqlite};
use crate::error::{DbError, ErrorKind};

#[derive(Clone)]
enum Pool {
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

/// A connection pool to one database, and the entry point of the library.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    url: DatabaseUrl,
    lock_timeout: Duration,
    max_connections: u32,
    /// How long the pool waits for a connection before "pool timed out".
    acquire_timeout: Duration,
    /// Serialises "take N connections at once" so two experiments cannot each hold half of the pool
    /// and wait for each other forever.
    bulk_acquire: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// A PostgreSQL URL's hosts and the watcher that keeps the pool on the one that qualifies, when
    /// the URL names several (or a `target_session_attrs`).
    watched: Option<std::sync::Arc<Watched>>,
    /// Connections sessions handed back clean, for the next session (`None` on a URL with several
    /// hosts: a kept connection could be on a host the watcher has since left).
    warm: Option<std::sync::Arc<Warm>>,
}

/// How long a session waits for a host that accepts writes, on a URL with several hosts, while none
/// does: a Patroni failover (the leader key's ttl, then the promotion) takes seconds, and a run goes
/// on after it rather than giving up after the acquire timeout.
pub const FAILOVER_WAIT: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Database {
    /// Connects (checking that the server answers) and applies the migrations.
    #[tracing::instrument(
        skip(options),
        fields(backend = %options.url.backend(), url = %options.url.redacted()),
        level = "debug"
    )]
    pub async fn connect(options: ConnectOptions) -> Result<Self, ConnectError> {
        let url = options.url.clone();
        let mut watched = None;
        let pool = match url.backend() {
            Backend::Postgres => {
                let (pool, hosts) = postgres::connect(&options).await?;
                watched = hosts.map(std::sync::Arc::new);
                Pool::Postgres(pool)
            }
            Backend::MySql => Pool::MySql(mysql::connect(&options).await?),
            Backend::Sqlite => Pool::Sqlite(sqlite::connect(&options).await?),
        };
        let db = Self {
            pool,
            url,
            lock_timeout: options.lock_timeout,
            max_connections: options.max_connections,
            acquire_timeout: options.acquire_timeout,
            bulk_acquire: Default::default(),
            warm: watched.is_none().then(|| Warm::new(options.max_connections as usize)),
            watched,
        };
        // One PostgreSQL server that is a replica would fail every write (a migration first): say so.
        // (A URL with several hosts only ever connects to one that qualifies.)
        if db.watched.is_none() && matches!(db.read_only().await, Ok(Some(true))) {
            return Err(ConnectError::ReadOnlyReplica { url: db.url.redacted() });
        }
        // A Galera node outside the Primary component answers, then refuses every query with 1047:
        // say so, with its state, rather than fail later on a migration. (Errors here are left to the
        // statements that follow.)
        if let Ok(Some(state)) = db.node_state().await
            && !state.accepts_queries()
        {
            return Err(ConnectError::NodeNotReady { url: db.url.redacted(), state });
        }
        if options.migrate {
            db.migrate().await?;
        }
        Ok(db)
    }

    /// Applies the embedded migrations of this backend. Safe to run concurrently and repeatedly: on
    /// Galera, connections to several nodes migrating at once conflict (sqlx's migration lock is
    /// node-local, so each node may start the same migration); the losers retry until they find the
    /// migrations applied.
    #[tracing::instrument(skip(self), fields(backend = %self.backend()), level = "debug")]
    pub async fn migrate(&self) -> Result<(), ConnectError> {
        // A SQLite file that cannot be used (disk full, not a database, read-only) is said as such, not
        // as a failed migration.
        let migrate = |source: sqlx::migrate::MigrateError| {
            let driver_error = match &source {
                sqlx::migrate::MigrateError::Execute(err) | sqlx::migrate::MigrateError::ExecuteMigration(err, _) => {
                    Some(err)
                }
                _ => None,
            };
            match driver_error.filter(|_| self.backend() == Backend::Sqlite) {
                Some(err) => connect::sqlite_file_error(&self.url, err)
                    .unwrap_or(ConnectError::Migrate { url: self.url.redacted(), source }),
                None => ConnectError::Migrate { url: self.url.redacted(), source },
            }
        };
        let mut backoff = SETUP_RETRY.backoff();
        loop {
            let result = match &self.pool {
                Pool::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await,
                Pool::MySql(p) => mysql::migrate(p, sqlx::migrate!("./migrations/mysql")).await,
                Pool::Sqlite(p) => sqlite::migrate(p, sqlx::migrate!("./migrations/sqlite")).await,
            };
            let conflict = match &result {
                Err(
                    sqlx::migrate::MigrateError::Execute(err) | sqlx::migrate::MigrateError::ExecuteMigration(err, _),
                ) => self.is_setup_conflict(err),
                // A migration marked "not done" in `_sqlx_migrations`: another node's, in progress, or one
                // that lost a conflict after MariaDB's implicit commit had recorded it. Only on a cluster
                // (on one server our migration lock excludes both, and dirty means dirty): the mark is removed
                // and the migration runs again, which our migrations allow (they are idempotent).
                Err(sqlx::migrate::MigrateError::Dirty(version)) => match &self.pool {
                    Pool::MySql(p) if matches!(self.node_state().await, Ok(Some(_))) => {
                        mysql::forget_unfinished_migration(p, *version).await;
                        true
                    }
                    _ => false,
                },
                _ => false,
            };
            match backoff.next() {
                Some(sleep) if conflict => tokio::time::sleep(sleep).await,
                _ => return result.map_err(migrate),
            }
        }
    }

    /// A migration that lost to the same migration on another Galera node: a certification conflict
    /// (1213), or the other node's row in `_sqlx_migrations` (1062).
    fn is_setup_conflict(&self, err: &sqlx::Error) -> bool {
        match &self.pool {
            Pool::MySql(_) => mysql::MySql::classify(err) == ErrorKind::Deadlock || mysql::is_duplicate_key(err),
            _ => false,
        }
    }

    /// Where this server stands in a Galera cluster; `None` unless it is a MariaDB node with wsrep on.
    pub async fn node_state(&self) -> Result<Option<NodeState>, DbError> {
        match &self.pool {
            Pool::MySql(_) => self.session().await?.node_state().await,
            _ => Ok(None),
        }
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// The URL without its password.
    pub fn redacted_url(&self) -> String {
        self.url.redacted()
    }

    /// The pool's size limit.
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// One connection from the pool, with the configured lock timeout. Its span lasts as long as the
    /// pool takes to hand one out. Waits (up to the acquire timeout) for a connection another user of
    /// the pool hands back when the server refuses new ones.
    #[tracing::instrument(skip(self), fields(backend = %self.backend()), level = "debug")]
    pub async fn session(&self) -> Result<Session, DbError> {
        self.acquire(Refused::Wait).await
    }

    /// `n` distinct connections at once, for `n` workers that must run truly in parallel.
    #[tracing::instrument(skip(self), fields(backend = %self.backend()), level = "debug")]
    pub async fn sessions(&self, n: usize) -> Result<Vec<Session>, DbError> {
        if n > self.max_connections as usize {
            return Err(DbError::new(
                ErrorKind::PoolTimeout,
                format!("{n} connections requested but the pool holds at most {}", self.max_connections),
            ));
        }
        let _one_at_a_time = self.bulk_acquire.lock().await;
        let mut sessions = Vec::with_capacity(n);
        for _ in 0..n {
            sessions.push(self.session_or_refusal().await?);
        }
        Ok(sessions)
    }

    /// A session for work that holds the pool's other connections itself (a run's workers) or that
    /// starts a run (setup statements): when the server refuses a new connection and none of the pool's
    /// own is free, that refusal is the answer at once, in the server's words (`max_connections`, a
    /// role's or user's limit), rather than "pool timed out" after the acquire timeout.
    async fn session_or_refusal(&self) -> Result<Session, DbError> {
        self.acquire(Refused::Answer).await
    }

    /// Takes a connection from the pool, working around how sqlx meets a server that refuses new ones.
    ///
    /// sqlx opens a new connection when it finds none idle, and then retries the server's refusal
    /// until its timeout (PostgreSQL's 53300 is "transient" to it; MariaDB's 1226 fails the acquire at
    /// once), even once a connection of its own comes back. Yet the pool's own connections may be what
    /// fills the limit: one handed back a moment before is kept warm (see `warm`) or returned by a task
    /// of sqlx's own, after a ping, so the next acquire may not see it idle yet. So a session first
    /// takes a kept connection, and when an acquire is slow (or refused) while a connection of the
    /// pool's own is free, it is started again and takes that one. Otherwise, with
    /// [`Refused::Answer`], the server is asked directly whether it refuses new connections, and its
    /// refusal is the answer.
    async fn acquire(&self, refused: Refused) -> Result<Session, DbError> {
        match &self.watched {
            Some(watched) => self.acquire_on_serving_host(&watched.hosts, refused).await,
            None => self.acquire_from_pool(refused).await,
        }
    }

    /// [`Self::acquire_from_pool`] on a URL with several hosts: waits (up to [`FAILOVER_WAIT`]) for a
    /// host that qualifies, and starts again when the watcher moves the pool to another host meanwhile
    /// (an attempt on the lost one would wait in the pool's own retries).
    async fn acquire_on_serving_host(&self, hosts: &Hosts, refused: Refused) -> Result<Session, DbError> {
        let deadline = tokio::time::Instant::now() + FAILOVER_WAIT.max(self.acquire_timeout);
        loop {
            let Some(serving) = hosts.serving(deadline).await else {
                return Err(DbError::new(
                    ErrorKind::ConnectionLost,
                    format!(
                        "no host of the URL accepts writes (target_session_attrs={}) after {} s",
                        hosts.target().as_str(),
                        FAILOVER_WAIT.max(self.acquire_timeout).as_secs()
                    ),
                ));
            };
            tokio::select! {
                result = self.acquire_from_pool(refused) => match result {
                    Err(err) if err.kind().means_unreachable() && tokio::time::Instant::now() < deadline => {
                        hosts.recheck();
                        tokio::time::sleep(hosts::CHECK_EVERY).await;
                    }
                    other => return other,
                },
                () = hosts.left(serving) => {}
            }
        }
    }

    /// Which host of a URL with several hosts serves now; `None` for other URLs.
    pub fn host_state(&self) -> Option<HostState> {
        self.watched.as_ref().map(|w| w.hosts.state())
    }

    /// Whether the server's sessions are read-only (a PostgreSQL replica, in recovery); `None` on
    /// other databases.
    pub async fn read_only(&self) -> Result<Option<bool>, DbError> {
        match &self.pool {
            Pool::Postgres(_) => self.session().await?.read_only().await,
            _ => Ok(None),
        }
    }

    /// The PostgreSQL timeline of the serving host (it grows by one with each promotion); `None` on
    /// other databases.
    pub async fn timeline(&self) -> Result<Option<i64>, DbError> {
        match &self.pool {
            Pool::Postgres(_) => self.session().await?.timeline().await,
            _ => Ok(None),
        }
    }

    async fn acquire_from_pool(&self, refused: Refused) -> Result<Session, DbError> {
        let deadline = tokio::time::Instant::now() + self.acquire_timeout;
        loop {
            if let Some(session) = self.kept_session().await {
                return Ok(session);
            }
            // Counted as waiting from here to the pool's answer, so connections handed back meanwhile go
            // to the pool; and one kept just before the count began is taken now.
            let _waiting = self.warm.as_ref().map(|warm| warm.wait());
            if let Some(session) = self.kept_session().await {
                return Ok(session);
            }
            let acquire = self.acquire_once();
            tokio::pin!(acquire);
            loop {
                let done = tokio::select! {
                    biased;
                    result = &mut acquire => Some(result),
                    () = tokio::time::sleep(connect::REFUSAL_CHECK_AFTER) => None,
                };
                let in_time = tokio::time::Instant::now() < deadline;
                match done {
                    Some(result) => return result,
                    None if self.free_connections() > 0 && in_time => break,
                    None if refused == Refused::Answer => {
                        if let Some(refusal) = self.refusal().await {
                            if self.free_connections() > 0 && tokio::time::Instant::now() < deadline {
                                break;
                            }
                            return Err(refusal);
                        }
                    }
                    None => {}
                }
            }
        }
    }

    /// A connection a session handed back clean moments ago (see `warm`), pinged first if it sat longer
    /// than [`super::PING_AFTER_IDLE`]; one whose ping fails is closed, and the next is tried.
    async fn kept_session(&self) -> Option<Session> {
        let warm = self.warm.as_ref()?;
        loop {
            let mut taken = warm.take()?;
            if taken.needs_ping && taken.conn.ping().await.is_err() {
                taken.conn.close_on_drop();
                continue;
            }
            return Some(Session::new(taken.conn, self.lock_timeout, Some(warm.clone())));
        }
    }

    /// One plain acquire from the pool.
    async fn acquire_once(&self) -> Result<Session, DbError> {
        let conn = match &self.pool {
            Pool::Postgres(p) => PooledConn::Postgres(p.acquire().await.map_err(db_err::<postgres::Postgres>)?),
            Pool::MySql(p) => PooledConn::MySql(p.acquire().await.map_err(db_err::<mysql::MySql>)?),
            Pool::Sqlite(p) => PooledConn::Sqlite(p.acquire().await.map_err(db_err::<sqlite::Sqlite>)?),
        };
        // The lock timeout was set when the connection was opened (see `after_connect`): no round trip.
        Ok(Session::new(conn, self.lock_timeout, self.warm.clone()))
    }

    /// Whether the server refuses a new connection right now, asked with one direct connection.
    async fn refusal(&self) -> Option<DbError> {
        match &self.pool {
            Pool::Postgres(p) => connect::refusal::<postgres::Postgres>(p, postgres::explain).await,
            Pool::MySql(p) => connect::refusal::<mysql::MySql>(p, mysql::explain).await,
            Pool::Sqlite(_) => None,
        }
    }

    /// How many of the pool's connections are free to be handed out: idle in sqlx's pool, or kept warm.
    fn free_connections(&self) -> usize {
        let idle = match &self.pool {
            Pool::Postgres(p) => p.num_idle(),
            Pool::MySql(p) => p.num_idle(),
            Pool::Sqlite(p) => p.num_idle(),
        };
        idle + self.warm.as_ref().map_or(0, |warm| warm.len())
    }

    /// How many connections the pool holds or is opening: those handed out, those idle, and those
    /// being connected (for tests and diagnostics; the server may count one more, closing).
    pub fn pool_size(&self) -> u32 {
        match &self.pool {
            Pool::Postgres(p) => p.size(),
            Pool::MySql(p) => p.size(),
            Pool::Sqlite(p) => p.size(),
        }
    }

    /// Checks that the database answers now, with a round trip (for readiness probes, and before work
    /// that should not start at all without it): a connection the pool hands out may be untested.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.session().await?.server_version().await.map(drop)
    }

    /// The server's version string (`SELECT version()`, as the seed's connection check).
    pub async fn server_version(&self) -> Result<String, DbError> {
        self.session_or_refusal().await?.server_version().await
    }

    /// Creates a fresh post with `like = 0` and returns its key.
    pub async fn create_post(&self) -> Result<Pk, DbError> {
        retry_setup(|| async { self.session_or_refusal().await?.create_post().await }).await
    }

    /// Creates post `pk` with `like = 0` unless it exists. Writes only when it is missing, so it does
    /// not wait for a lock someone holds on an existing row (or on a whole SQLite database).
    pub async fn ensure_post(&self, pk: Pk) -> Result<(), DbError> {
        retry_setup(|| async {
            let mut session = self.session_or_refusal().await?;
            match session.read(pk).await {
                Err(err) if err.kind() == ErrorKind::NotFound => session.ensure_post(pk).await,
                other => other.map(drop),
            }
        })
        .await
    }

    /// Sets post `pk` back to `like = 0, version = 0`, creating it if needed.
    pub async fn reset_post(&self, pk: Pk) -> Result<(), DbError> {
        retry_setup(|| async { self.session_or_refusal().await?.reset_post(pk).await }).await
    }

    /// Post `pk`'s whole counter: its own `like` and `version` plus those of its slots.
    pub async fn read_total(&self, pk: Pk) -> Result<Counter, DbError> {
        self.session().await?.read_total(pk).await
    }

    /// Reads post `pk`.
    pub async fn load_post(&self, pk: Pk) -> Result<PostRow, DbError> {
        self.session().await?.load(pk).await
    }

    /// Closes every connection.
    pub async fn close(&self) {
        // The pool's close waits for every connection handed out: the kept ones go back first.
        if let Some(warm) = &self.warm {
            warm.close();
        }
        match &self.pool {
            Pool::Postgres(p) => p.close().await,
            Pool::MySql(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }
}

/// The retry of setup statements (creating or resetting a post, migrations). On Galera, nodes that
/// create the same row at once certify as a deadlock (1213) though nothing is wrong: the loser runs
/// again, a few times, briefly. Lock timeouts are not retried here: a held row stays the caller's to see.
const SETUP_RETRY: crate::RetryPolicy = crate::RetryPolicy {
    max_attempts: 20,
    base_delay: Duration::from_millis(5),
    max_delay: Duration::from_millis(200),
    deadline: Duration::from_secs(10),
};

/// What an acquire does when the server refuses a new connection and none of the pool's own is free.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// Waits for one another user hands back, up to the acquire timeout (a request of the service).
    Wait,
    /// Answers with the server's refusal (a run that holds the pool's other connections itself).
    Answer,
}

/// Runs a setup statement under [`SETUP_RETRY`], retrying deadlocks (1213, 40P01) only.
async fn retry_setup<T, F, Fut>(mut statement: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let mut backoff = SETUP_RETRY.backoff();
    loop {
        match statement().await {
            Err(err) if err.kind() == ErrorKind::Deadlock => match backoff.next() {
                Some(sleep) => tokio::time::sleep(sleep).await,
                None => return Err(err),
            },
            other => return other,
        }
    }
}
