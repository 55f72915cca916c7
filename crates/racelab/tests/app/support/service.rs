//! `spawn_app`, a raw connection for what the test itself does to the database, a TCP proxy the test
//! can cut, and the child-process harness.

use std::sync::Once;
use std::time::{Duration, Instant};

use racelab::http::experiments::RunLimits;
use racelab::http::lab::Limits;
use racelab::http::{AppState, Application, ConnectionSettings, HttpConfig, LikeSettings};
use racelab_core::{Backend, ConnectOptions, DatabaseUrl, RetryPolicy};
use racelab_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection};

/// A running service and a client for it.
pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    /// Sends the shutdown signal; the handle completes when `run_until` returns.
    pub fn stop(mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        self.server.take().expect("the server task")
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        read_answer(response).await
    }

    /// GET that must answer 200 with JSON.
    pub async fn ok(&self, path: &str) -> Value {
        let answer = self.get(path).await;
        assert_eq!(answer.status, StatusCode::OK, "GET {path}: {}", answer.text);
        assert_eq!(answer.content_type, "application/json", "GET {path}");
        answer.body
    }

    /// GET on a task of its own, so the test can act while the request runs.
    pub fn get_in_background(&self, path: &str) -> tokio::task::JoinHandle<Answer> {
        let (client, url) = (self.client.clone(), format!("{}{path}", self.address));
        tokio::spawn(async move { read_answer(client.get(url).send().await.expect("request")).await })
    }

    /// `POST /posts`, which must answer 201; returns the new post's key.
    pub async fn new_post(&self) -> i64 {
        let answer = read_answer(self.client.post(format!("{}/posts", self.address)).send().await.expect("POST")).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.body["pk"].as_i64().expect("pk")
    }
}

pub async fn read_answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let content_type =
        headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, content_type, headers, body, text }
}

fn init_test_log() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            racelab::telemetry::init("info,racelab_core=debug,sqlx=warn", racelab::telemetry::LogFormat::Text);
        }
    });
}

/// The service on `test`'s database, with [`Settings::default`].
pub async fn spawn_app(test: &TestDb) -> TestApp {
    Settings::default().spawn(&test.url).await
}

/// The service on any database URL, with the given connection acquire timeout.
pub async fn spawn_app_at(url: &str, acquire_timeout: Duration) -> TestApp {
    Settings { acquire_timeout, ..Settings::default() }.spawn(url).await
}

/// The service with a given acquire timeout and request timeout.
pub async fn spawn_app_with(url: &str, acquire_timeout: Duration, request_timeout: Duration) -> TestApp {
    Settings { acquire_timeout, request_timeout, ..Settings::default() }.spawn(url).await
}

/// The service with a given lock timeout.
pub async fn spawn_app_with_lock_timeout(url: &str, lock_timeout: Duration) -> TestApp {
    Settings { lock_timeout, ..Settings::default() }.spawn(url).await
}

/// The service's settings a test may change.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub acquire_timeout: Duration,
    pub request_timeout: Duration,
    pub lock_timeout: Duration,
    pub shutdown_grace: Duration,
    /// The pool's size (`--pool-size`).
    pub max_connections: u32,
    /// `--max-workers`, `--max-increments`.
    pub limits: Limits,
    /// Idle timeouts and the connection cap.
    pub connections: ConnectionSettings,
    /// `--like-strategy`, `--combine-likes`, `--require-idempotency-key`, `--idempotency-key-ttl`.
    pub likes: LikeSettings,
    /// `--max-runs`, `--run-retention`, `--max-kept-runs`.
    pub runs: RunLimits,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            // A correctness test waits for a connection as long as a loaded machine needs; the tests of
            // what happens when none comes set a short timeout of their own.
            acquire_timeout: racelab_testkit::ACQUIRE_TIMEOUT,
            request_timeout: Duration::from_secs(60),
            lock_timeout: ConnectOptions::DEFAULT_LOCK_TIMEOUT,
            shutdown_grace: Duration::from_secs(5),
            // The servers are shared (PostgreSQL allows 100 connections for everybody): a test's pool is
            // small, and a test that needs more is in the `many-connections` group (see the testkit).
            max_connections: racelab_testkit::CONNECTIONS_PER_TEST,
            limits: Limits::default(),
            connections: ConnectionSettings::default(),
            likes: LikeSettings::default(),
            runs: RunLimits::default(),
        }
    }
}

impl Settings {
    /// The service on `url` with these settings.
    pub async fn spawn(self, url: &str) -> TestApp {
        init_test_log();
        let mut database = ConnectOptions::new(DatabaseUrl::parse(url).expect("test URL parses"));
        database.max_connections = self.max_connections;
        database.acquire_timeout = self.acquire_timeout;
        database.lock_timeout = self.lock_timeout;
        let config = HttpConfig {
            bind: "127.0.0.1:0".parse().expect("address"),
            database,
            retry: RetryPolicy::default(),
            request_timeout: self.request_timeout,
            limits: self.limits,
            shutdown_grace: self.shutdown_grace,
            slots: racelab_core::strategy::DEFAULT_SLOTS,
            connections: self.connections,
            likes: self.likes,
            runs: self.runs,
        };
        let app = Application::build(config).await.expect("the service starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        TestApp { address, state, client: reqwest::Client::new(), shutdown: Some(stop), server: Some(server) }
    }
}

/// Leaves a `/test-db/2th-plock` run on post 1 detached: the test holds the row lock, the request
/// outlives `app`'s request timeout and is answered 503, and its workers stay queued behind the lock.
/// Returns the connection holding the lock.
pub async fn detach_a_locked_run(app: &TestApp, test: &TestDb) -> Raw {
    // Post 1 is made directly, not by `/test-db/init`: the app's short request timeout is meant for the
    // locked run, and on a loaded machine the first request (a fresh pool's first connection) may
    // take longer than it.
    let db = test.connect().await;
    db.ensure_post(1).await.unwrap_or_else(|e| panic!("post 1: {e}"));
    db.close().await;
    let mut holder = Raw::connect(test).await;
    holder.hold_row_lock(1).await;
    let answer = app.get("/test-db/2th-plock").await;
    let problem = assert_problem(&answer, 503);
    assert_eq!(problem["type"], "urn:racelab:problem:request-timeout", "{}", answer.text);
    // The answer says what the experiment had done: nothing yet, the test holds the row.
    let experiment = &problem["experiment"];
    assert_eq!(experiment["state"], "running", "{}", answer.text);
    assert_eq!((experiment["expected"].as_u64(), experiment["acknowledged"].as_u64()), (Some(50), Some(0)));
    holder
}

/// Keys of a JSON object, sorted.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}

/// Asserts a problem+json answer with `status`, and returns its body.
pub fn assert_problem(answer: &Answer, status: u16) -> &Value {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.text);
    assert_eq!(answer.content_type, "application/problem+json", "{}", answer.text);
    let body = &answer.body;
    assert_eq!(body["status"], status, "{}", answer.text);
    for member in ["type", "title", "detail"] {
        assert!(body[member].as_str().is_some_and(|s| !s.is_empty()), "no `{member}`: {}", answer.text);
    }
    body
}

/// Asserts a 400 problem naming the query parameter `name` (in `detail` and `invalid_params`) whose
/// detail contains `says`, and returns its body.
pub fn assert_refused<'a>(answer: &'a Answer, name: &str, says: &str) -> &'a Value {
    let problem = assert_problem(answer, 400);
    assert_eq!(problem["type"], "urn:racelab:problem:invalid-parameter", "{}", answer.text);
    assert_eq!(problem["invalid_params"][0]["name"], name, "{}", answer.text);
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&format!("`{name}`")) && detail.contains(says), "expected `{says}`: {detail}");
    problem
}

/// A connection of the test's own, for what the test does to the database behind the service's back.
pub enum Raw {
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Raw {
    pub async fn connect(test: &TestDb) -> Self {
        match test.backend {
            Backend::Postgres => Raw::Postgres(sqlx::PgConnection::connect(&test.url).await.expect("connect")),
            Backend::MySql => Raw::MySql(sqlx::MySqlConnection::connect(&test.url).await.expect("connect")),
            Backend::Sqlite => Raw::Sqlite(sqlx::SqliteConnection::connect(&test.url).await.expect("connect")),
        }
    }

    pub async fn execute(&mut self, sql: &str) {
        let query = || sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
        let result = match self {
            Raw::Postgres(c) => query().execute(&mut *c).await.map(drop),
            Raw::MySql(c) => query().execute(&mut *c).await.map(drop),
            Raw::Sqlite(c) => query().execute(&mut *c).await.map(drop),
        };
        result.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn count(&mut self, sql: &str) -> i64 {
        let sql_safe = || AssertSqlSafe(sql.to_owned());
        let result = match self {
            Raw::Postgres(c) => sqlx::query_scalar::<_, i64>(sql_safe()).fetch_one(&mut *c).await,
            Raw::MySql(c) => sqlx::query_scalar::<_, i64>(sql_safe()).fetch_one(&mut *c).await,
            Raw::Sqlite(c) => sqlx::query_scalar::<_, i64>(sql_safe()).fetch_one(&mut *c).await,
        };
        result.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Opens a transaction that holds post `pk`'s row lock until the test commits or rolls back.
    pub async fn hold_row_lock(&mut self, pk: i64) {
        self.execute("BEGIN").await;
        self.execute(&format!("SELECT pk FROM posts WHERE pk = {pk} FOR UPDATE")).await;
    }

    /// The quoted `like` column of this dialect.
    pub fn like(&self) -> &'static str {
        match self {
            Raw::MySql(_) => "`like`",
            _ => "\"like\"",
        }
    }

    /// Waits until no other connection to this database runs a statement: what connections that
    /// were cut had sent has finished on the server (it may commit after the client has gone).
    pub async fn wait_until_no_other_statement_runs(&mut self) {
        let sql = match self {
            Raw::Postgres(_) => {
                "SELECT COUNT(*)::BIGINT FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND state <> 'idle'"
            }
            Raw::MySql(_) => {
                "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.processlist \
                 WHERE db = DATABASE() AND id <> CONNECTION_ID() AND command <> 'Sleep'"
            }
            Raw::Sqlite(_) => return,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.count(sql).await != 0 {
            assert!(Instant::now() < deadline, "statements of cut connections still run after 20 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls until `n` statements of other connections matching `pattern` (SQL `LIKE`) wait for a lock
    /// (one the test holds). From a connection outside any transaction: inside one, PostgreSQL shows
    /// one snapshot of `pg_stat_activity` however often it is asked.
    pub async fn wait_for_statements_waiting(&mut self, pattern: &str, n: i64) {
        let sql = match self {
            Raw::Postgres(_) => format!(
                "SELECT COUNT(*)::BIGINT FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND query LIKE '{pattern}'"
            ),
            Raw::MySql(_) => format!(
                "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.processlist \
                 WHERE db = DATABASE() AND id <> CONNECTION_ID() AND info LIKE '{pattern}'"
            ),
            Raw::Sqlite(_) => return,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.count(&sql).await < n {
            assert!(Instant::now() < deadline, "{n} statements like `{pattern}` did not wait for the lock in 20 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// One statement of another connection matching `pattern` waits for a lock.
    pub async fn wait_for_statement_waiting(&mut self, pattern: &str) {
        self.wait_for_statements_waiting(pattern, 1).await;
    }

    /// Waits until some transaction on the server waits for a row lock (the test holds it): the
    /// interleaving is observed, not hoped for.
    pub async fn wait_for_lock_waiter(&mut self) {
        let sql = match self {
            Raw::Postgres(_) => {
                "SELECT COUNT(*)::BIGINT FROM pg_locks WHERE NOT granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            }
            Raw::MySql(_) => {
                // MariaDB's innodb_trx does not list these waiters reliably; the process list shows
                // the statement each session is stuck in.
                "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.processlist \
                 WHERE db = DATABASE() AND id <> CONNECTION_ID() AND info LIKE '%FOR UPDATE%'"
            }
            Raw::Sqlite(_) => panic!("SQLite has no row locks to wait for"),
        };
        // Polls (the condition, not a guess of how long it takes), failing the test after 20 s.
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.count(sql).await == 0 {
            assert!(Instant::now() < deadline, "timed out waiting for a transaction to wait for the row lock");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A TCP proxy between the service and the database server that the test can cut and restore.
pub use racelab_testkit::proxy::TcpProxy;
