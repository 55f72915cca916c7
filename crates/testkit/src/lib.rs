//! A database of its own for every test, on PostgreSQL, MariaDB/MySQL and SQLite, so tests run in
//! parallel and leave nothing behind.
//!
//! Servers default to the ones on this kind of machine and can be pointed elsewhere:
//! `RACELAB_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and
//! `RACELAB_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`). A server that cannot be
//! reached fails the test with the URL tried and the variable to set: nothing is skipped silently.
//!
//! The servers are shared (PostgreSQL's `max_connections` is 100 for everybody on the machine), so a
//! test holds few connections: at most [`CONNECTIONS_PER_TEST`] per server, or
//! [`CONNECTIONS_PER_WIDE_TEST`] for a test of the `many-connections` group of
//! `.config/nextest.toml`, which nextest runs alone. Connections wait for a free slot (bounded) when
//! the server is full rather than fail at once: a correctness test is not a benchmark.
//!
//! A test's database is dropped however the test ends: when it returns, when it panics (the
//! [`TestDb`] is dropped while unwinding), and, for a process that was killed (nextest's timeout),
//! by [`sweep`] at the start of the next run (`scripts/test`).

pub mod fixtures;
pub mod galera;
pub mod limited_account;
pub mod pgha;
pub mod proxy;
mod sweep;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub use sweep::{SweepReport, sweep};

use racelab_core::db::redact;
use racelab_core::{Backend, ConnectOptions, Database, DatabaseUrl};
use sqlx::{AssertSqlSafe, Connection, Executor};

const POSTGRES_VAR: &str = "RACELAB_TEST_POSTGRES_URL";
const MYSQL_VAR: &str = "RACELAB_TEST_MYSQL_URL";
const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const MYSQL_DEFAULT: &str = "mysql://root@127.0.0.1:3306/test";

/// Most connections a test holds on its server at once (its pools together), unless it belongs to
/// the `many-connections` test group. With nextest's two test threads of this kind of machine, the
/// ordinary tests hold at most 2 x (10 + 1 admin connection) = 22 connections of a server at once.
pub const CONNECTIONS_PER_TEST: u32 = 10;

/// Most connections a test of the `many-connections` group holds (32 workers of one experiment need
/// 32). That group runs alone (`threads-required` all of nextest's threads), so the suite never holds
/// more than 32 + 1 admin connection of a server at once.
pub const CONNECTIONS_PER_WIDE_TEST: u32 = 32;

/// The nextest test group of the tests that may open [`CONNECTIONS_PER_WIDE_TEST`] connections.
pub const WIDE_GROUP: &str = "many-connections";

/// How long a test waits for a connection from its pool, or for the server to have a free one: long,
/// because the machine may be loaded and the server shared. A correctness test is not a benchmark.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the workers of a wide test wait for a row lock (or SQLite's write lock): 32 writers of one
/// row queue for it, and on a loaded machine SQLite's busy wait (each writer polls; there is no queue)
/// can leave one waiting past the service's 5 s default. A test of lock timeouts sets its own.
pub const WIDE_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the admin connection (creating and dropping test databases) waits for a server that is
/// out of connections to have one free.
const ADMIN_WAIT: Duration = Duration::from_secs(120);

/// The prefix of every test database (and SQLite file), followed by its creation time in Unix seconds
/// and a random part: `racelab_t_1765080000_<20 hex digits>`. [`sweep`] reads the time back. No
/// longer than the names before the time was in them (42 characters): URLs holding it are printed in
/// 80 columns.
pub const NAME_PREFIX: &str = "racelab_t_";

/// Hex digits of a test database name's random part (80 bits).
const RANDOM_DIGITS: usize = 20;

/// The pool size a test may have on a server: [`CONNECTIONS_PER_TEST`], or
/// [`CONNECTIONS_PER_WIDE_TEST`] when `wide` and the test runs in the [`WIDE_GROUP`]. Under nextest a
/// wide pool outside that group is a mistake that would break the suite's connection budget, and
/// panics saying where to add the test. (`cargo test` runs tests as threads of one process, without
/// groups: nothing to check there.)
pub fn pool_size(wide: bool) -> u32 {
    if !wide {
        return CONNECTIONS_PER_TEST;
    }
    if std::env::var_os("NEXTEST").is_some() {
        let group = std::env::var("NEXTEST_TEST_GROUP").unwrap_or_default();
        assert_eq!(
            group, WIDE_GROUP,
            "this test opens up to {CONNECTIONS_PER_WIDE_TEST} connections: add it to the `{WIDE_GROUP}` \
             group in .config/nextest.toml, which runs alone, so the suite stays within its connection budget"
        );
    }
    CONNECTIONS_PER_WIDE_TEST
}

/// Runs one async test body on every backend: `on_every_backend!(name);` for an
/// `async fn name(db: TestDb)` generates `name::postgres`, `name::mysql` and `name::sqlite`, so a
/// backend cannot silently drop out of coverage.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            $crate::backend_test!($name, postgres, Postgres);
            $crate::backend_test!($name, mysql, MySql);
            $crate::backend_test!($name, sqlite, Sqlite);
        }
    )+};
}

/// Like [`on_every_backend!`], for tests of what only a server has (connections to kill, row locks,
/// application locks): generates `name::postgres` and `name::mysql` only, so no SQLite variant passes
/// without testing anything.
#[macro_export]
macro_rules! on_server_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            $crate::backend_test!($name, postgres, Postgres);
            $crate::backend_test!($name, mysql, MySql);
        }
    )+};
}

/// One generated test: `super::$name` on a fresh database of `Backend::$backend`.
#[doc(hidden)]
#[macro_export]
macro_rules! backend_test {
    ($name:ident, $test:ident, $backend:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $test() {
            $crate::run(racelab_core::Backend::$backend, super::$name).await;
        }
    };
}

/// Creates a test database on `backend` and runs `body` on it. The database is dropped when the body
/// is done with it (also when the body panics).
pub async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    body(TestDb::create(backend).await).await;
}

/// A freshly created, empty database that belongs to one test, dropped with this value.
pub struct TestDb {
    pub backend: Backend,
    /// The URL of this test's database (with any password: tests only).
    pub url: String,
    location: Option<Location>,
}

#[derive(Clone)]
enum Location {
    Server { admin_url: String, name: String },
    File(PathBuf),
}

impl TestDb {
    /// Creates an empty database of its own (nothing migrated yet).
    pub async fn create(backend: Backend) -> Self {
        let name = new_name(SystemTime::now());
        let (url, location) = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                (format!("sqlite://{}", path.display()), Location::File(path))
            }
            Backend::Postgres | Backend::MySql => {
                let (var, default) = server_url(backend);
                let admin_url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
                admin_execute(backend, &admin_url, var, &format!("CREATE DATABASE {name}")).await;
                (replace_database(&admin_url, &name), Location::Server { admin_url, name })
            }
        };
        Self { backend, url, location: Some(location) }
    }

    /// Connect options for this database: a pool of [`CONNECTIONS_PER_TEST`], and a wait for a
    /// connection sized for a loaded machine ([`ACQUIRE_TIMEOUT`]).
    pub fn options(&self) -> ConnectOptions {
        let mut options = ConnectOptions::new(DatabaseUrl::parse(&self.url).expect("test URL parses"));
        options.max_connections = pool_size(false);
        options.acquire_timeout = ACQUIRE_TIMEOUT;
        options
    }

    /// [`TestDb::options`] with a pool of [`CONNECTIONS_PER_WIDE_TEST`], for 32 workers at once, and
    /// their lock waits sized for a loaded machine ([`WIDE_LOCK_TIMEOUT`]); only for tests of the
    /// [`WIDE_GROUP`] (see [`pool_size`]).
    pub fn wide_options(&self) -> ConnectOptions {
        ConnectOptions { max_connections: self.wide_pool_size(), lock_timeout: WIDE_LOCK_TIMEOUT, ..self.options() }
    }

    /// [`CONNECTIONS_PER_WIDE_TEST`]. On a server, only for tests of the [`WIDE_GROUP`] (see
    /// [`pool_size`]); a SQLite file takes no server connection, so its tests need no group.
    pub fn wide_pool_size(&self) -> u32 {
        match self.backend {
            Backend::Sqlite => CONNECTIONS_PER_WIDE_TEST,
            Backend::Postgres | Backend::MySql => pool_size(true),
        }
    }

    /// Connects with [`TestDb::wide_options`] and applies the migrations.
    pub async fn connect_wide(&self) -> Database {
        self.connect_with(self.wide_options()).await
    }

    /// The database's name (on SQLite, the file's name without `.db`).
    pub fn name(&self) -> &str {
        match &self.location {
            Some(Location::Server { name, .. }) => name,
            Some(Location::File(path)) => path.file_stem().and_then(|s| s.to_str()).unwrap_or_default(),
            None => "",
        }
    }

    /// Connects with [`TestDb::options`] and applies the migrations.
    pub async fn connect(&self) -> Database {
        self.connect_with(self.options()).await
    }

    /// Connects with the given options.
    pub async fn connect_with(&self, options: ConnectOptions) -> Database {
        Database::connect(options).await.unwrap_or_else(|e| panic!("connecting to the test database: {e}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(location) = self.location.take() else { return };
        let backend = self.backend;
        // Drop runs outside async code (or while a test unwinds): clean up on a runtime of our own,
        // in a thread of our own, and wait for it.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            match runtime {
                Ok(runtime) => runtime.block_on(drop_location(backend, location)),
                Err(err) => eprintln!("racelab-testkit: cannot clean up: {err}"),
            }
        });
        // A failed drop must be seen, not swallowed (it panics in the cleanup thread).
        if cleanup.join().is_err() {
            eprintln!("racelab-testkit: dropping the {backend} test database {} failed; see above", self.url);
        }
    }
}

async fn drop_location(backend: Backend, location: Location) {
    match location {
        Location::File(path) => {
            for suffix in ["", "-wal", "-shm", "-journal", "-anomalies.lock"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        Location::Server { admin_url, name } => {
            let (var, _) = server_url(backend);
            let sql = match backend {
                Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                _ => {
                    kill_mysql_sessions(&admin_url, &name).await;
                    format!("DROP DATABASE IF EXISTS {name}")
                }
            };
            admin_execute(backend, &admin_url, var, &sql).await;
        }
    }
}

/// MariaDB waits for open transactions on a database before dropping it: end them.
async fn kill_mysql_sessions(admin_url: &str, name: &str) {
    let mut conn: sqlx::MySqlConnection = admin_connect(Backend::MySql, admin_url, MYSQL_VAR).await;
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()",
    )
    .bind(name)
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
    for id in ids {
        let _ = conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("KILL {id}")))).await;
    }
}

fn server_url(backend: Backend) -> (&'static str, &'static str) {
    match backend {
        Backend::Postgres => (POSTGRES_VAR, POSTGRES_DEFAULT),
        _ => (MYSQL_VAR, MYSQL_DEFAULT),
    }
}

async fn admin_execute(backend: Backend, admin_url: &str, var: &str, sql: &str) {
    let sql = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
    match backend {
        Backend::Postgres => {
            let mut conn: sqlx::PgConnection = admin_connect(backend, admin_url, var).await;
            conn.execute(sql).await.unwrap_or_else(|e| panic!("{e}"));
        }
        _ => {
            let mut conn: sqlx::MySqlConnection = admin_connect(backend, admin_url, var).await;
            conn.execute(sql).await.unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// Whether a server refused a connection because it has none left: PostgreSQL 53300 (its
/// `max_connections`, or a role's limit), MariaDB/MySQL 1040 (`max_connections`), 1203 and 1226 (a
/// user's limit).
pub fn is_out_of_connections(err: &sqlx::Error) -> bool {
    let Some(db) = err.as_database_error() else { return false };
    if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return matches!(mysql.number(), 1040 | 1203 | 1226);
    }
    db.code().as_deref() == Some("53300")
}

/// An admin connection to a test server. A server with no connection left is waited for (at most
/// 120 s), saying so once: other clients share it. One that does not answer, or refuses for
/// another reason, fails the test with what is true.
pub async fn admin_connect<C: Connection>(backend: Backend, admin_url: &str, var: &str) -> C {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    let mut said = false;
    loop {
        let err = match C::connect(admin_url).await {
            Ok(conn) => return conn,
            Err(err) => err,
        };
        if is_out_of_connections(&err) {
            if started.elapsed() >= ADMIN_WAIT {
                panic!(
                    "the test {backend} server at {} has had no free connection for {} s ({err}): other clients \
                     hold its max_connections; this suite holds at most {} of them at once, so free some, or \
                     raise the server's limit",
                    redact(admin_url),
                    ADMIN_WAIT.as_secs(),
                    CONNECTIONS_PER_WIDE_TEST + 1,
                );
            }
            if !said {
                eprintln!(
                    "racelab-testkit: the test {backend} server at {} has no free connection ({err}); waiting for \
                     one (at most {} s)",
                    redact(admin_url),
                    ADMIN_WAIT.as_secs()
                );
                said = true;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
            continue;
        }
        match err {
            sqlx::Error::Database(db) => {
                panic!("the test {backend} server at {} refused the connection: {db}; check {var}", redact(admin_url))
            }
            other => panic!(
                "cannot reach the test {backend} server at {} ({other}); start it or set {var} to a reachable URL",
                redact(admin_url)
            ),
        }
    }
}

/// A new test database's name, made at `now`: see [`NAME_PREFIX`].
fn new_name(now: SystemTime) -> String {
    let seconds = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{NAME_PREFIX}{seconds}_{}", &random[..RANDOM_DIGITS])
}

/// When a test database was made, read back from its name; `None` for a name this kit did not make.
fn made_at(name: &str) -> Option<SystemTime> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (seconds, random) = rest.split_once('_')?;
    if random.len() != RANDOM_DIGITS || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let seconds: u64 = seconds.parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// The same server URL with another database name (the path), keeping any query string.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}
