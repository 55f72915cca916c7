//! A database of its own for every test, on PostgreSQL, MariaDB/MySQL and SQLite, so tests run in
//! parallel and leave nothing behind.
//!
//! Servers default to the ones on this kind of machine and can be pointed elsewhere:
//! `RACELAB_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and
//! `RACELAB_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`). A server that cannot be
//! reached fails the test with the URL tried and the variable to set: nothing is skipped silently.

pub mod galera;
pub mod proxy;

use std::path::PathBuf;
use std::time::Duration;

use racelab_core::db::redact;
use racelab_core::{Backend, ConnectOptions, Database, DatabaseUrl};
use sqlx::{AssertSqlSafe, Connection, Executor};

const POSTGRES_VAR: &str = "RACELAB_TEST_POSTGRES_URL";
const MYSQL_VAR: &str = "RACELAB_TEST_MYSQL_URL";
const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const MYSQL_DEFAULT: &str = "mysql://root@127.0.0.1:3306/test";

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
        let name = format!("racelab_t_{}", uuid::Uuid::new_v4().simple());
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

    /// Connect options for this database: a pool large enough for 32 workers, short timeouts.
    pub fn options(&self) -> ConnectOptions {
        let mut options = ConnectOptions::new(DatabaseUrl::parse(&self.url).expect("test URL parses"));
        options.max_connections = 40;
        options.acquire_timeout = Duration::from_secs(20);
        options
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
    let Ok(mut conn) = sqlx::MySqlConnection::connect(admin_url).await else { return };
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
    let unreachable = |e: sqlx::Error| -> ! {
        panic!(
            "cannot reach the test {backend} server at {} ({e}); start it or set {var} to a reachable URL",
            redact(admin_url)
        )
    };
    let sql = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
    match backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(admin_url).await.unwrap_or_else(|e| unreachable(e));
            conn.execute(sql).await.unwrap_or_else(|e| panic!("{e}"));
        }
        _ => {
            let mut conn = sqlx::MySqlConnection::connect(admin_url).await.unwrap_or_else(|e| unreachable(e));
            conn.execute(sql).await.unwrap_or_else(|e| panic!("{e}"));
        }
    }
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
