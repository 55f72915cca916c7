//! `racelab serve` on a database that does not exist: `/ready` (and every request that needs the
//! database) says what is wrong and how to create it, without the server's host or user; the log says
//! it once, with the whole command, however many requests come; and once the database is created, the
//! service connects without a restart, and logs that once.
//!
//! The real binary as a child process, so the test reads the very log an operator reads.

use std::process::Stdio;
use std::time::{Duration, Instant};

use racelab_core::Backend;
use racelab_testkit::{TestDb, on_server_backends};
use sqlx::{AssertSqlSafe, Connection};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::support::service::{Answer, read_answer};

/// `racelab serve` on port 0 with every log line it writes.
struct Serve {
    _child: Child,
    address: String,
    log: mpsc::UnboundedReceiver<String>,
    client: reqwest::Client,
    /// Every line read so far.
    lines: Vec<String>,
}

impl Serve {
    async fn start(database_url: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_racelab"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("RACELAB_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .env_remove("RACELAB_INIT_SQL")
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the racelab binary starts");
        let log = crate::support::binary::stderr_lines(&mut child);
        let mut serve =
            Self { _child: child, address: String::new(), log, client: reqwest::Client::new(), lines: Vec::new() };
        let line = serve.wait_for_log("listening on").await;
        let port = line.rsplit(':').next().and_then(|p| p.trim().parse::<u16>().ok()).expect("port in the log");
        serve.address = format!("http://127.0.0.1:{port}");
        serve
    }

    /// Waits (20 s at most) for a log line containing `needle`, keeping every line read.
    async fn wait_for_log(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self.lines.iter().find(|line| line.contains(needle)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.log.recv()).await {
                Ok(Some(line)) => self.lines.push(line),
                Ok(None) => panic!("the server exited before logging `{needle}`:\n{}", self.lines.join("\n")),
                Err(_) => panic!("no `{needle}` in the log within 20 s:\n{}", self.lines.join("\n")),
            }
        }
    }

    /// The lines logged so far containing `needle`.
    fn logged(&mut self, needle: &str) -> Vec<String> {
        while let Ok(line) = self.log.try_recv() {
            self.lines.push(line);
        }
        self.lines.iter().filter(|line| line.contains(needle)).cloned().collect()
    }

    async fn get(&self, path: &str) -> Answer {
        read_answer(self.client.get(format!("{}{path}", self.address)).send().await.expect(path)).await
    }
}

/// The test server's URL with `name` for its database: a database the test has not created yet.
fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a server URL has a path");
    format!("{base}/{name}")
}

/// Runs `sql` on the server `test` is on, outside its database.
async fn on_server(test: &TestDb, sql: &str) {
    let sql = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
    match test.backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&with_database(&test.url, "postgres")).await.unwrap();
            sqlx::Executor::execute(&mut conn, sql).await.unwrap();
        }
        _ => {
            let mut conn = sqlx::MySqlConnection::connect(&with_database(&test.url, "mysql")).await.unwrap();
            sqlx::Executor::execute(&mut conn, sql).await.unwrap();
        }
    }
}

async fn a_missing_database_is_named_with_how_to_create_it_and_logged_once(test: TestDb) {
    // The test's database, named by the testkit (and dropped by it at the end), is dropped at once:
    // the service starts on a database that does not exist.
    let name = test.url.rsplit('/').next().unwrap().to_owned();
    on_server(&test, &format!("DROP DATABASE {name}")).await;
    let mut serve = Serve::start(&test.url).await;

    // At start-up, the log says what is wrong and the command that creates it.
    let logged = serve.wait_for_log("cannot use the database").await;
    let command = match test.backend {
        Backend::Postgres => "createdb -h 127.0.0.1",
        _ => "mysql -h127.0.0.1",
    };
    assert!(logged.contains(command) && logged.contains(&name), "{logged}");

    // Every answer says it too, to anyone: the database's name and how to create it, not the server's
    // address or user, nor "try again shortly", which would never help.
    let create = match test.backend {
        Backend::Postgres => format!("`createdb {name}`"),
        _ => format!("`CREATE DATABASE {name}`"),
    };
    for path in ["/ready", "/ready", "/test-db/check", "/ready", "/ready", "/ready"] {
        let answer = serve.get(path).await;
        assert_eq!(answer.status, 503, "{path}: {}", answer.text);
        assert!(answer.headers.contains_key("retry-after"), "{path}");
        let detail = answer.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(&format!("the database `{name}` does not exist on the server")), "{detail}");
        assert!(detail.contains(&create), "{detail}");
        assert!(!detail.contains("try again shortly"), "{detail}");
        for private in ["127.0.0.1", "postgres@", "root@", " -U", " -u", " -h"] {
            assert!(!answer.text.contains(private), "{path} shows {private}: {}", answer.text);
        }
    }
    // Once, however many requests: the page asks /ready every 2 s.
    assert_eq!(serve.logged("cannot use the database").len(), 1, "{:#?}", serve.lines);
    assert!(serve.logged("readiness check failed").is_empty(), "{:#?}", serve.lines);
    assert!(serve.logged("request failed").is_empty(), "{:#?}", serve.lines);
    assert!(serve.logged("response failed").is_empty(), "{:#?}", serve.lines);

    // The database created, the service connects without a restart (within its 1 s reconnect
    // cooldown: a bound, not a wait), and says so once.
    on_server(&test, &format!("CREATE DATABASE {name}")).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = serve.get("/ready").await;
        if answer.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still {}: {}", answer.status, answer.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    serve.wait_for_log("connected to the database").await;
    assert_eq!(serve.get("/ready").await.status, 200);
    assert_eq!(serve.logged("cannot use the database").len(), 1, "{:#?}", serve.lines);
    assert_eq!(serve.logged("connected to the database").len(), 1, "{:#?}", serve.lines);
}

on_server_backends!(a_missing_database_is_named_with_how_to_create_it_and_logged_once);
