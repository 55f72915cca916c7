//! What every handler shares: the database (connected lazily, so the service starts and answers
//! `/health` while the database is still down), what is wrong with it when it cannot be used, and one
//! async lock per post.
//!
//! What is wrong with the database is logged once per change (down, down for another reason, up
//! again), not once per request: a page polling `/ready` every 2 s must not fill the log.
//!
//! The per-post lock is what keeps one request's numbers out of another's: two experiments on the
//! same row run one after the other, experiments on different rows run side by side. The seed's
//! service mixed concurrent requests together; this must never.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::FromRef;
use metrics_exporter_prometheus::PrometheusHandle;
use racelab_core::db::{ConnectError, FileProblem, Refusal};
use racelab_core::{Backend, ConnectOptions, Database, DatabaseUrl, Pk, RetryPolicy};
use tokio::sync::{OnceCell, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use super::combining::Combiner;
use super::config::{HttpConfig, LikeSettings};
use super::error::ApiError;
use super::experiments::registry::Registry;
use super::limits::Limits;

/// After a failed connection attempt, requests are refused at once for this long instead of each one
/// waiting for its own attempt (a dead database must give quick 503s, not a queue).
const RECONNECT_COOLDOWN: Duration = Duration::from_secs(1);

/// Shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    options: ConnectOptions,
    retry: RetryPolicy,
    request_timeout: Duration,
    /// Slot rows of the `sharded` strategy's counter.
    slots: u16,
    limits: Limits,
    db: OnceCell<Database>,
    connecting: tokio::sync::Mutex<Option<Instant>>,
    /// What was last seen of the database, so a change is logged once.
    seen: Mutex<Seen>,
    posts: Arc<PostLocks>,
    /// One permit per pooled connection that experiments may use at once (see [`AppState::worker_slots`]).
    worker_slots: Arc<Semaphore>,
    metrics: PrometheusHandle,
    likes: LikeSettings,
    /// The likes waiting for their post's next combined batch (`--combine-likes`).
    combiner: Arc<Combiner>,
    /// The experiment runs of `/experiments`, running and kept.
    runs: Arc<Registry>,
}

/// Connections kept out of experiments' reach, for `/check`, `/ready` and the like.
const RESERVED_CONNECTIONS: u32 = 2;

impl AppState {
    /// The state of a service configured by `config` (its listener and connection settings are the
    /// accept loop's, not the handlers').
    pub fn new(config: HttpConfig, metrics: PrometheusHandle) -> Self {
        let HttpConfig { database: options, retry, request_timeout, limits, slots: sharded_slots, likes, runs, .. } =
            config;
        let slots = options.max_connections.saturating_sub(RESERVED_CONNECTIONS).max(1) as usize;
        Self {
            inner: Arc::new(Inner {
                // As many permits as `max_workers()`.
                worker_slots: Arc::new(Semaphore::new(slots)),
                options,
                retry,
                request_timeout,
                slots: sharded_slots,
                limits,
                db: OnceCell::new(),
                connecting: tokio::sync::Mutex::new(None),
                seen: Mutex::new(Seen::Unknown),
                posts: Arc::new(PostLocks::default()),
                metrics,
                likes,
                combiner: Arc::default(),
                runs: Arc::new(Registry::new(runs)),
            }),
        }
    }

    /// The database, connecting (and migrating) on first use. Once connected, the pool replaces broken
    /// connections by itself (each connection is tested before it is handed out). A failure says what
    /// is wrong (`DatabaseDown`), and is logged when it is news.
    pub async fn db(&self) -> Result<Database, ApiError> {
        if let Some(db) = self.inner.db.get() {
            return Ok(db.clone());
        }
        let mut last_failure = self.inner.connecting.lock().await;
        if let Some(db) = self.inner.db.get() {
            return Ok(db.clone());
        }
        if last_failure.is_some_and(|at| at.elapsed() < RECONNECT_COOLDOWN) {
            return Err(self.last_down().map_or(ApiError::DatabaseUnavailable, ApiError::DatabaseDown));
        }
        match Database::connect(self.inner.options.clone()).await {
            Ok(db) => {
                let _ = self.inner.db.set(db.clone());
                *last_failure = None;
                // Once per process: the pool is kept from now on.
                tracing::info!(database = %db.redacted_url(), "connected to the database");
                *self.inner.seen.lock().unwrap_or_else(PoisonError::into_inner) = Seen::Up;
                Ok(db)
            }
            Err(err) => {
                *last_failure = Some(Instant::now());
                let down = DatabaseDown::from_connect(&err, &self.inner.options.url);
                // ConnectError's text names only the redacted URL; the command that creates a missing
                // database holds its host and user, never its password.
                let advice = match &err {
                    ConnectError::Refused {
                        refusal: Refusal::NoSuchDatabase { create_with: Some(command) }, ..
                    } => {
                        format!("create it: {command} (the service connects without a restart)")
                    }
                    _ => down.to_string(),
                };
                self.database_down(down.clone(), || format!("cannot use the database: {err}; {advice}"));
                Err(ApiError::DatabaseDown(down))
            }
        }
    }

    /// Records that the database cannot be used, and why; logs `message` when that is news (it was
    /// up, unknown, or down for another reason).
    pub fn database_down(&self, down: DatabaseDown, message: impl FnOnce() -> String) {
        let mut seen = self.inner.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if *seen != Seen::Down(down.clone()) {
            tracing::warn!("{}", message());
            *seen = Seen::Down(down);
        }
    }

    /// Records that the connected database answers; logs it when it had stopped.
    pub fn database_up(&self) {
        let mut seen = self.inner.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*seen, Seen::Down(_)) {
            tracing::info!(database = %self.inner.options.url.redacted(), "the database answers again");
        }
        *seen = Seen::Up;
    }

    /// What was last found wrong with the database, if it is down.
    fn last_down(&self) -> Option<DatabaseDown> {
        match &*self.inner.seen.lock().unwrap_or_else(PoisonError::into_inner) {
            Seen::Down(down) => Some(down.clone()),
            Seen::Unknown | Seen::Up => None,
        }
    }

    /// The kind of database the service works on, known from its URL without connecting.
    pub fn backend(&self) -> Backend {
        self.inner.options.url.backend()
    }

    /// The database's URL (with its password: never to be shown; `redacted()` is for that).
    pub fn database_url(&self) -> &DatabaseUrl {
        &self.inner.options.url
    }

    /// The runs of `/experiments`.
    pub fn runs(&self) -> &Arc<Registry> {
        &self.inner.runs
    }

    /// The database if it is connected, without trying to connect.
    pub fn connected_db(&self) -> Option<Database> {
        self.inner.db.get().cloned()
    }

    /// The retry policy of the strategies that retry.
    pub fn retry(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// Slot rows of the `sharded` strategy's counter (`--slots`).
    pub fn slots(&self) -> u16 {
        self.inner.slots
    }

    /// How likes are made.
    pub fn likes(&self) -> LikeSettings {
        self.inner.likes
    }

    /// The likes waiting for their post's next combined batch.
    pub fn combiner(&self) -> &Arc<Combiner> {
        &self.inner.combiner
    }

    /// How long a request may take.
    pub fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// The largest experiment one request may ask for.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The lock timeout of new sessions.
    pub fn lock_timeout(&self) -> Duration {
        self.inner.options.lock_timeout
    }

    /// Waits until no other request works on post `pk`, and holds it until the guard is dropped.
    pub async fn lock_post(&self, pk: Pk) -> PostGuard {
        PostLocks::lock(&self.inner.posts, pk).await
    }

    /// The most workers one experiment may have: the pool less the connections kept for other requests.
    pub fn max_workers(&self) -> u32 {
        self.inner.options.max_connections.saturating_sub(RESERVED_CONNECTIONS).max(1)
    }

    /// Refuses (422) an experiment with more workers than [`AppState::max_workers`]: it could never get
    /// its connections reserved, and run without a reservation it would time out on acquiring them.
    pub fn check_workers(&self, workers: usize) -> Result<u32, ApiError> {
        let max = self.max_workers();
        match u32::try_from(workers) {
            Ok(wanted) if wanted <= max => Ok(wanted),
            _ => Err(ApiError::InvalidExperiment(format!(
                "`workers` = {workers} is more than this server's pool allows: at most {max} (a pool of {} \
                 connections, {RESERVED_CONNECTIONS} of them kept for other requests; see --pool-size)",
                self.inner.options.max_connections
            ))),
        }
    }

    /// Waits until `workers` connections are free for an experiment, and reserves them until the
    /// permit is dropped. Two large experiments on different posts then queue for connections instead
    /// of each taking part of the pool and timing out (which would wrongly read as "database
    /// unavailable"). More workers than the pool allows are refused (see [`AppState::check_workers`]).
    pub async fn worker_slots(&self, workers: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        let wanted = self.check_workers(workers)?;
        self.inner
            .worker_slots
            .clone()
            .acquire_many_owned(wanted)
            .await
            .map_err(|_| ApiError::Internal("the worker slots were closed".to_owned()))
    }

    /// Requests waiting for a post another request holds (for tests that must see a request queued).
    pub fn post_waiters(&self) -> usize {
        self.inner.posts.waiting.load(Ordering::SeqCst)
    }

    /// Posts some request currently holds or waits for (for tests of the lock table's size).
    pub fn posts_in_use(&self) -> usize {
        self.inner.posts.map.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn metrics(&self) -> &PrometheusHandle {
        &self.inner.metrics
    }
}

/// What was last seen of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Unknown,
    Up,
    Down(DatabaseDown),
}

/// Why the database cannot be used, as any client of `/ready` (or of any endpoint answered 503) may
/// read it: what is wrong and what to do. It names the database, which is what must be created and no
/// secret, but never the server's host, port or user, nor the server's own words, which may quote
/// them: those go to the service's log, with the whole command that creates a missing database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseDown {
    #[error(
        "the SQLite database file cannot be opened: check that its directory exists and is writable (the service's log names the file)"
    )]
    FileUnusable,
    /// The database URL's address answers in another database's protocol.
    #[error(
        "the server at the database URL's address speaks another database's protocol: check the URL's scheme and \
         port (the service's log names them)"
    )]
    OtherProtocol,
    /// The SQLite file opened, and cannot be used: disk full, no SQLite database, read-only.
    #[error("the SQLite database file cannot be used: {0} (the service's log names the file)")]
    SqliteFile(FileProblem),
    #[error(
        "nothing answers at the database server's address: check that the server runs (the service's log names the address)"
    )]
    Unreachable,
    #[error(
        "the database {} does not exist on the server: create it ({}, on the server and as the user the \
         service's log names); the service connects without a restart",
        name.as_deref().map_or_else(|| "named in DATABASE_URL".to_owned(), |name| format!("`{name}`")),
        create_command(*backend, name.as_deref())
    )]
    NoSuchDatabase { backend: Backend, name: Option<String> },
    #[error(
        "the database server refused the service's user name or password, or its rights on the database: check DATABASE_URL"
    )]
    AccessDenied,
    #[error("the database server has no connection left (its max_connections, or the user's connection limit)")]
    TooManyConnections,
    #[error("an --init-sql statement (RACELAB_INIT_SQL) failed on a new connection (the service's log names it)")]
    InitStatement,
    #[error("the database's migrations could not be applied (the service's log says why)")]
    Migrations,
    #[error("the Galera node is not ready, Primary and Synced: it is {0}")]
    NodeNotReady(String),
    /// No host of a PostgreSQL URL with several hosts accepts writes now (a failover under way).
    #[error(
        "no host of the database URL accepts writes: the primary is gone and no replica has been promoted yet \
         (a failover under way), or every host is a replica (the service's log names each host's answer)"
    )]
    NoPrimary,
    /// The database server is a PostgreSQL replica: its sessions may only read.
    #[error(
        "the database server is a read-only replica (in recovery): point DATABASE_URL at the primary, or at every \
         host of the cluster with target_session_attrs=read-write"
    )]
    ReadOnlyReplica,
    #[error("the database server refused the connection (the service's log has its message)")]
    Refused,
    #[error("the database stopped answering: check that the server runs (the service's log has the error)")]
    Lost,
}

impl DatabaseDown {
    /// What a failed connection to `url` means for a client.
    pub fn from_connect(err: &ConnectError, url: &DatabaseUrl) -> Self {
        match err {
            ConnectError::Unreachable { backend: Backend::Sqlite, .. } => Self::FileUnusable,
            ConnectError::Unreachable { .. } | ConnectError::Url(_) => Self::Unreachable,
            ConnectError::Refused { refusal, .. } => match refusal {
                Refusal::NoSuchDatabase { .. } => {
                    Self::NoSuchDatabase { backend: url.backend(), name: database_name(&url.redacted()) }
                }
                Refusal::AccessDenied => Self::AccessDenied,
                Refusal::TooManyConnections => Self::TooManyConnections,
                Refusal::Other => Self::Refused,
            },
            ConnectError::InitStatement { .. } => Self::InitStatement,
            ConnectError::Migrate { .. } => Self::Migrations,
            ConnectError::NodeNotReady { state, .. } => Self::NodeNotReady(state.to_string()),
            ConnectError::SqliteFile { problem, .. } => Self::SqliteFile(*problem),
            ConnectError::OtherProtocol { .. } => Self::OtherProtocol,
            ConnectError::NoPrimary { .. } => Self::NoPrimary,
            ConnectError::ReadOnlyReplica { .. } => Self::ReadOnlyReplica,
        }
    }
}

/// The database a server URL names (its path), read from the redacted URL; `None` when it names
/// none, or one a command could not be written with.
fn database_name(redacted: &str) -> Option<String> {
    let (_, rest) = redacted.split_once("://")?;
    let (_, path) = rest.split_once('/')?;
    let name = path.split(['?', '#']).next().unwrap_or_default();
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-$".contains(c))).then(|| name.to_owned())
}

/// The statement or command that creates database `name`, without a host or user.
fn create_command(backend: Backend, name: Option<&str>) -> String {
    let name = name.unwrap_or("<name>");
    match backend {
        Backend::MySql => format!("`CREATE DATABASE {name}`"),
        _ => format!("`createdb {name}`"),
    }
}

/// What `GET /metrics` renders, handed to it as its own state so that the metrics module needs nothing
/// of this one.
impl FromRef<AppState> for PrometheusHandle {
    fn from_ref(state: &AppState) -> Self {
        state.metrics().clone()
    }
}

/// One async mutex per post in use; an entry lives only while a request holds or waits for it, so the
/// table stays as small as the number of posts being worked on.
#[derive(Default)]
struct PostLocks {
    map: Mutex<HashMap<Pk, Arc<tokio::sync::Mutex<()>>>>,
    /// Requests in [`PostLocks::lock`] that have not got their post yet.
    waiting: AtomicUsize,
}

/// Counts one waiter while it lives (also when the waiting request is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PostLocks {
    async fn lock(this: &Arc<Self>, pk: Pk) -> PostGuard {
        let mutex = {
            let mut map = this.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.entry(pk).or_default().clone()
        };
        let guard = match mutex.clone().try_lock_owned() {
            Ok(guard) => guard,
            Err(_) => {
                this.waiting.fetch_add(1, Ordering::SeqCst);
                let _waiting = Waiting(&this.waiting);
                mutex.lock_owned().await
            }
        };
        PostGuard { guard: Some(guard), pk, locks: this.clone() }
    }
}

/// Holds post `pk` for one request; releasing it removes the table entry when nobody else wants it.
pub struct PostGuard {
    guard: Option<OwnedMutexGuard<()>>,
    pk: Pk,
    locks: Arc<PostLocks>,
}

impl Drop for PostGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.map.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the table's own reference left: nobody holds or waits for this post.
        if map.get(&self.pk).is_some_and(|m| Arc::strong_count(m) == 1) {
            map.remove(&self.pk);
        }
    }
}
