//! An anomaly suite beside other clients of its server: a second suite on the same database waits for
//! the first instead of dropping its table from under it, and a client that keeps reading InnoDB's
//! lock tables does not hide a lock wait from the suite.

use std::str::FromStr;
use std::time::Duration;

use racelab_core::anomalies::{self, Case, Level, Matrix};
use racelab_core::{Backend, DatabaseUrl};
use racelab_testkit::{TestDb, on_every_backend};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Connection, Executor, Row};
use tokio::time::Instant;

use crate::support::anomaly_token::token;

const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The test's own view of its database, to see when the first suite has begun: one connection, kept
/// open until both suites are done.
enum Watcher {
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Watcher {
    /// On SQLite the file is created here, in WAL mode, as racelab's own connections create it, before
    /// either suite starts: a file the watcher created in the default rollback mode would have to be
    /// switched to WAL by the suite, which needs the file to itself, and the watcher's reads would make
    /// that switch fail at once ("database is locked", whatever the busy timeout). And the watcher
    /// stays open: the last connection to close a WAL file checkpoints it under an exclusive lock.
    async fn open(test: &TestDb) -> Self {
        let url = &test.url;
        match test.backend {
            Backend::Postgres => Watcher::Postgres(sqlx::PgConnection::connect(url).await.unwrap()),
            Backend::MySql => Watcher::MySql(sqlx::MySqlConnection::connect(url).await.unwrap()),
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .unwrap()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(LOCK_TIMEOUT);
                Watcher::Sqlite(sqlx::SqliteConnection::connect_with(&options).await.unwrap())
            }
        }
    }

    /// Whether the suite's table exists in the test's database: the first run is under way.
    async fn table_exists(&mut self) -> bool {
        let count: i64 = match self {
            Watcher::Postgres(c) => {
                let sql = "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'racelab_anomaly_test'";
                sqlx::query(sql).fetch_one(c).await.unwrap().get(0)
            }
            Watcher::MySql(c) => {
                let sql = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() \
                           AND table_name = 'racelab_anomaly_test'";
                sqlx::query(sql).fetch_one(c).await.unwrap().get(0)
            }
            Watcher::Sqlite(c) => {
                let sql = "SELECT COUNT(*) FROM sqlite_master WHERE name = 'racelab_anomaly_test'";
                sqlx::query(sql).fetch_one(c).await.unwrap().get(0)
            }
        };
        count > 0
    }

    async fn close(self) {
        let _ = match self {
            Watcher::Postgres(c) => c.close().await,
            Watcher::MySql(c) => c.close().await,
            Watcher::Sqlite(c) => c.close().await,
        };
    }
}

fn tokens(matrix: &Matrix) -> Vec<String> {
    matrix
        .columns
        .iter()
        .flat_map(|c| c.cells.iter().map(move |cell| format!("{} {}: {}", c.name, cell.case, token(cell))))
        .collect()
}

// The first run is under way (its table exists) when the second starts on the same database; both
// end with the same matrix, and neither disagrees with Hermitage.
async fn a_second_suite_on_one_database_waits_for_the_first(test: TestDb) {
    let url = DatabaseUrl::parse(&test.url).unwrap();
    let mut watcher = Watcher::open(&test).await;
    let first = {
        let url = url.clone();
        tokio::spawn(async move { anomalies::run(&url, LOCK_TIMEOUT).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !watcher.table_exists().await {
        assert!(!first.is_finished(), "the first suite ended before its table was seen: {:?}", first.await);
        assert!(Instant::now() < deadline, "the first suite's table never appeared");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = anomalies::run(&url, LOCK_TIMEOUT).await.expect("the second suite");
    let first = first.await.expect("first suite's task").expect("the first suite");
    watcher.close().await;

    assert_eq!(tokens(&first), tokens(&second));
    for matrix in [&first, &second] {
        let differences: Vec<_> =
            matrix.differences().map(|(level, cell)| format!("{} at {level}", cell.case)).collect();
        assert!(differences.is_empty(), "{differences:?}");
    }
}

on_every_backend!(a_second_suite_on_one_database_waits_for_the_first);

// A client reads the SQLite file (its read transaction open) while the suite connects to it and takes
// its lock: the suite starts all the same. The reader holds on until the suite's lock file exists,
// which the suite creates only once its first connection is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_connects_while_another_client_reads_its_sqlite_file() {
    let test = TestDb::create(Backend::Sqlite).await;
    let url = DatabaseUrl::parse(&test.url).unwrap();
    let mut watcher = Watcher::open(&test).await;
    let Watcher::Sqlite(reader) = &mut watcher else { unreachable!("a SQLite test") };
    reader.execute("BEGIN").await.unwrap();
    let _: i64 = sqlx::query("SELECT COUNT(*) FROM sqlite_master").fetch_one(&mut *reader).await.unwrap().get(0);

    let suite = {
        let url = url.clone();
        let levels = &Level::of(Backend::Sqlite)[..1];
        tokio::spawn(async move { anomalies::run_cases(&[url], LOCK_TIMEOUT, levels, &[Case::G0]).await })
    };
    let lock_file = format!("{}-anomalies.lock", test.url.trim_start_matches("sqlite://"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::path::Path::new(&lock_file).exists() && !suite.is_finished() {
        assert!(Instant::now() < deadline, "the suite neither failed nor took its lock within 60 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    reader.execute("COMMIT").await.unwrap();
    let matrix = suite.await.expect("the suite's task").expect("the suite, beside a reader");
    watcher.close().await;
    assert_eq!(matrix.columns.len(), 1);
}

// InnoDB refreshes `information_schema.innodb_trx` only after 0.1 s without any reader on the whole
// server. Another client reads it every 20 ms all through the run: the lock waits of G0 and P4 v+1 at
// repeatable read are still seen as lock waits, not timed out as if nobody could tell.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_wait_is_seen_while_another_client_keeps_reading_innodb_trx() {
    let test = TestDb::create(Backend::MySql).await;
    let url = DatabaseUrl::parse(&test.url).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (url, stop) = (test.url.clone(), stop.clone());
        tokio::spawn(async move {
            let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
            let mut reads = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sqlx::query("SELECT COUNT(*) FROM information_schema.innodb_trx").fetch_one(&mut c).await.unwrap();
                reads += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            reads
        })
    };
    let matrix = anomalies::run_cases(&[url], LOCK_TIMEOUT, &[Level::MyRepeatableRead], &[Case::G0, Case::P4Increment])
        .await
        .expect("the suite");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0);

    assert_eq!(
        tokens(&matrix),
        ["repeatable read G0: P blk@4", "repeatable read P4 v+1: P blk@6"],
        "{:#?}",
        matrix.columns[0].cells.iter().map(|c| &c.steps).collect::<Vec<_>>()
    );
}
