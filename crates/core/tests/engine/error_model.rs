//! Every error kind provoked for real on the database that produces it, and classified by code.
//! Where two sessions must conflict, the steps run one after the other (a conflict detected at the
//! second write needs no timing), or both sides block on each other until the database decides.

use std::time::Duration;

use racelab_core::db::TxMode;
use racelab_core::experiment::Target;
use racelab_core::{Backend, Database, ErrorKind, Experiment, LockMode, Post, SaveError, Strategy};
use racelab_testkit::{TestDb, on_every_backend, on_server_backends, run};
use sqlx::{AssertSqlSafe, Connection, Executor};

// Two transactions read the same version; the second writer is refused: 40001 on PostgreSQL,
// BUSY_SNAPSHOT (517) on SQLite. MariaDB's SERIALIZABLE turns reads into share locks, so there both
// writers block on each other until InnoDB picks a deadlock victim (1213).
async fn serializable_conflict_has_the_conflict_kind(test: TestDb) {
    let db = test.connect().await;
    let pk = db.create_post().await.unwrap();
    let (mut s1, mut s2) = (db.session().await.unwrap(), db.session().await.unwrap());
    for s in [&mut s1, &mut s2] {
        s.begin(TxMode::Serializable).await.unwrap();
        s.read(pk).await.unwrap();
    }
    let err = match test.backend {
        Backend::MySql => {
            let (a, b) = tokio::join!(s1.write(pk, 1), s2.write(pk, 1));
            let err = a.err().or(b.err()).expect("InnoDB refuses one of the two writers");
            assert_eq!(err.code(), Some("40001"), "{err}");
            err
        }
        _ => {
            s1.write(pk, 1).await.unwrap();
            s1.commit().await.unwrap();
            s2.write(pk, 1).await.unwrap_err()
        }
    };
    let expected = match test.backend {
        Backend::Postgres => ErrorKind::SerializationFailure,
        Backend::MySql => ErrorKind::Deadlock,
        Backend::Sqlite => ErrorKind::Busy,
    };
    assert_eq!(err.kind(), expected, "{err}");
    assert!(err.is_retryable());
}

// Two sessions lock two rows in opposite orders: 40P01 on PostgreSQL, 1213 on MariaDB.
async fn deadlock_has_the_deadlock_kind(test: TestDb) {
    let db = test.connect().await;
    let (a, b) = (db.create_post().await.unwrap(), db.create_post().await.unwrap());
    let (mut s1, mut s2) = (db.session().await.unwrap(), db.session().await.unwrap());
    for s in [&mut s1, &mut s2] {
        s.set_lock_timeout(Duration::from_secs(20)).await.unwrap();
        s.begin(TxMode::RowLocking(LockMode::Wait)).await.unwrap();
    }
    s1.read_for_update(a, LockMode::Wait).await.unwrap();
    s2.read_for_update(b, LockMode::Wait).await.unwrap();
    let (r1, r2) = tokio::join!(s1.read_for_update(b, LockMode::Wait), s2.read_for_update(a, LockMode::Wait));
    let err = r1.err().or(r2.err()).expect("the database breaks the cycle");
    assert_eq!(err.kind(), ErrorKind::Deadlock, "{err}");
    let code = if test.backend == Backend::Postgres { "40P01" } else { "40001" };
    assert_eq!(err.code(), Some(code));
}

// A versioned save after someone else saved: the typed stale-version error.
async fn stale_save_has_the_stale_version_kind(test: TestDb) {
    let db = test.connect().await;
    let pk = db.create_post().await.unwrap();
    let mut session = db.session().await.unwrap();
    let mut first = Post::load(&mut session, pk).await.unwrap();
    let mut second = Post::load(&mut session, pk).await.unwrap();
    first.set_like(first.like() + 1);
    first.save(&mut session).await.unwrap();
    assert_eq!(first.version(), 1);
    second.set_like(second.like() + 1);
    let err = second.save(&mut session).await.unwrap_err();
    assert!(matches!(err, SaveError::StaleVersion { loaded_version: 0, .. }), "{err}");
    assert_eq!(racelab_core::Classify::kind(&err), ErrorKind::StaleVersion);
    assert_eq!(db.load_post(pk).await.unwrap().like, 1);
}

// The server ends the connection: the next statement reports connection_lost, and the experiment
// worker that owned it takes a new connection.
async fn a_killed_connection_has_the_connection_lost_kind(test: TestDb) {
    let db = test.connect().await;
    let pk = db.create_post().await.unwrap();
    let mut victim = db.session().await.unwrap();
    let id = victim.connection_id().await.unwrap().expect("servers have connection ids");
    let kill = match test.backend {
        Backend::Postgres => format!("SELECT pg_terminate_backend({id})"),
        _ => format!("KILL {id}"),
    };
    admin_execute(&test, &kill).await;
    let err = victim.read(pk).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionLost, "{err:?}");
    assert!(!err.is_retryable(), "a lost commit may have happened: never blindly retried");
    drop(victim);
    // The pool recovers: the next session works.
    assert_eq!(db.session().await.unwrap().read(pk).await.unwrap().like, 0);
}

// A URL that names nothing listening: the connect error names the redacted URL.
async fn an_unreachable_server_is_named_without_its_password(test: TestDb) {
    let scheme = if test.backend == Backend::Postgres { "postgres" } else { "mysql" };
    let url = racelab_core::DatabaseUrl::parse(&format!("{scheme}://u:hunter2@127.0.0.1:1/x")).unwrap();
    let mut options = racelab_core::ConnectOptions::new(url);
    options.acquire_timeout = Duration::from_secs(2);
    let err = Database::connect(options).await.unwrap_err().to_string();
    assert!(err.contains(&format!("cannot connect to {scheme}://u:***@127.0.0.1:1/x")), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

on_every_backend!(serializable_conflict_has_the_conflict_kind, stale_save_has_the_stale_version_kind);

// Row deadlocks, killed connections and unreachable servers need a server: SQLite has one writer at
// a time and no connection to lose.
on_server_backends!(
    deadlock_has_the_deadlock_kind,
    a_killed_connection_has_the_connection_lost_kind,
    an_unreachable_server_is_named_without_its_password,
);

/// MariaDB with `innodb_snapshot_isolation = ON`: a write to a row changed since the transaction's
/// snapshot fails with 1020 instead of overwriting it.
fn snapshot_isolation(test: &TestDb) -> racelab_core::ConnectOptions {
    let mut options = test.options();
    options.init_statements = vec!["SET SESSION innodb_snapshot_isolation = ON".into()];
    options
}

/// What a `tracing` subscriber printed: here, sqlx's `sqlx::postgres::notice` events.
#[derive(Clone, Default)]
struct Printed(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Printed {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Write skew at SERIALIZABLE: PostgreSQL refuses the second COMMIT (40001), and a refused COMMIT has
// rolled the transaction back. The session sends no ROLLBACK after it, which PostgreSQL answers with
// a warning ("there is no transaction in progress") that every such operation of a lab run printed,
// and the session serves the next transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_refused_commit_is_not_rolled_back_twice() {
    use tracing::instrument::WithSubscriber;
    run(Backend::Postgres, async |test| {
        let db = test.connect().await;
        let (a, b) = (db.create_post().await.unwrap(), db.create_post().await.unwrap());
        let (mut s1, mut s2) = (db.session().await.unwrap(), db.session().await.unwrap());
        for s in [&mut s1, &mut s2] {
            s.begin(TxMode::Serializable).await.unwrap();
        }
        s1.read(a).await.unwrap();
        s2.read(b).await.unwrap();
        s1.write(b, 1).await.unwrap();
        s2.write(a, 1).await.unwrap();
        s1.commit().await.unwrap();

        let printed = Printed::default();
        let writer = printed.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let err = s2.commit().with_subscriber(subscriber).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SerializationFailure, "{err}");
        let printed = String::from_utf8(printed.0.lock().unwrap().clone()).unwrap();
        assert!(!printed.contains("no transaction in progress"), "{printed}");

        s2.begin(TxMode::Serializable).await.unwrap();
        assert_eq!(s2.read(a).await.unwrap().like, 0, "the refused transaction's write is not there");
        s2.commit().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_snapshot_isolation_turns_the_lost_update_into_1020() {
    run(Backend::MySql, async |test| {
        let db = test.connect_with(snapshot_isolation(&test)).await;
        let pk = db.create_post().await.unwrap();
        let mut reader = db.session().await.unwrap();
        reader.begin(TxMode::DefaultIsolation).await.unwrap();
        reader.read(pk).await.unwrap();
        db.session().await.unwrap().increment(pk).await.unwrap();
        let err = reader.write(pk, 1).await.unwrap_err();
        assert_eq!(err.code(), Some("HY000"), "{err}");
        assert_eq!(err.kind(), ErrorKind::SerializationFailure, "{err}");
        reader.rollback_quietly().await;
        assert_eq!(db.load_post(pk).await.unwrap().like, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_naive_fails_instead_of_losing_under_snapshot_isolation() {
    run(Backend::MySql, async |test| {
        let db = test.connect_with(snapshot_isolation(&test)).await;
        let naive = Experiment { force_race: true, ..Experiment::new(Strategy::Naive, 2, 1) };
        let outcome = naive.run(&db).await.unwrap();
        assert_eq!((outcome.acknowledged, outcome.failed, outcome.actual), (1, 1, Some(1)), "{outcome:#?}");
        assert_eq!(outcome.errors.get(&ErrorKind::SerializationFailure), Some(&1), "{outcome:#?}");
        assert_eq!(outcome.lost, Some(0));
        // Without it, the same forced race loses the update silently.
        let plain = test.connect().await;
        let outcome = Experiment { target: Target::FreshPost, ..naive }.run(&plain).await.unwrap();
        assert_eq!((outcome.acknowledged, outcome.failed, outcome.lost), (2, 0, Some(1)), "{outcome:#?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_lock_wait_timeout_is_1205_and_nowait_is_lock_not_available() {
    run(Backend::MySql, async |test| {
        let db = test.connect().await;
        let pk = db.create_post().await.unwrap();
        let mut holder = db.session().await.unwrap();
        holder.begin(TxMode::RowLocking(LockMode::Wait)).await.unwrap();
        holder.read_for_update(pk, LockMode::Wait).await.unwrap();

        let mut waiter = db.session().await.unwrap();
        waiter.set_lock_timeout(Duration::from_secs(1)).await.unwrap();
        waiter.begin(TxMode::RowLocking(LockMode::Wait)).await.unwrap();
        let timeout = waiter.read_for_update(pk, LockMode::Wait).await.unwrap_err();
        assert_eq!((timeout.kind(), timeout.code()), (ErrorKind::LockTimeout, Some("HY000")), "{timeout}");
        // After 1205 MariaDB keeps the transaction open; the session ends it.
        waiter.rollback_quietly().await;

        waiter.begin(TxMode::RowLocking(LockMode::NoWait)).await.unwrap();
        let nowait = waiter.read_for_update(pk, LockMode::NoWait).await.unwrap_err();
        assert_eq!(nowait.kind(), ErrorKind::LockNotAvailable, "MariaDB's NOWAIT says 1205 too: {nowait}");
        waiter.rollback_quietly().await;
        holder.rollback_quietly().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_busy_is_busy_and_a_stale_snapshot_is_busy_too() {
    run(Backend::Sqlite, async |test| {
        let db = test.connect().await;
        let pk = db.create_post().await.unwrap();
        // A writer holds the database lock; another writer with a short busy timeout gives up.
        let mut holder = db.session().await.unwrap();
        holder.begin(TxMode::RowLocking(LockMode::Wait)).await.unwrap();
        let mut other = db.session().await.unwrap();
        other.set_lock_timeout(Duration::from_millis(20)).await.unwrap();
        let err = other.increment(pk).await.unwrap_err();
        assert_eq!((err.kind(), err.code()), (ErrorKind::Busy, Some("5")), "{err}");
        holder.rollback_quietly().await;

        // A read transaction whose snapshot is overtaken by a commit cannot write: BUSY_SNAPSHOT.
        other.begin(TxMode::Serializable).await.unwrap();
        other.read(pk).await.unwrap();
        holder.increment(pk).await.unwrap();
        let err = other.write(pk, 1).await.unwrap_err();
        assert_eq!((err.kind(), err.code()), (ErrorKind::Busy, Some("517")), "{err}");
        other.rollback_quietly().await;
    })
    .await;
}

async fn admin_execute(test: &TestDb, sql: &str) {
    let sql = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
    match test.backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&test.url).await.unwrap();
            conn.execute(sql).await.unwrap();
        }
        _ => {
            let mut conn = sqlx::MySqlConnection::connect(&test.url).await.unwrap();
            conn.execute(sql).await.unwrap();
        }
    }
}
