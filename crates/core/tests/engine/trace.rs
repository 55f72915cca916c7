//! The engine's trace against real PostgreSQL, MariaDB and SQLite: the lost update drawn as the commit
//! that overwrote another worker's increment, the optimistic conflict and its retry, the pessimistic
//! wait behind a lock the test holds.

use std::time::{Duration, Instant};

use racelab_core::db::TxMode;
use racelab_core::experiment::Target;
use racelab_core::trace::{IncrementId, TraceEvent};
use racelab_core::{Backend, ErrorKind, Experiment, LockMode, Outcome, Strategy, Trace, TraceKind, TraceLimit};
use racelab_testkit::{TestDb, on_every_backend};
use sqlx::Connection;

async fn traced(db: &racelab_core::Database, experiment: Experiment) -> (Outcome, Trace) {
    let experiment = Experiment { trace: Some(TraceLimit::default()), ..experiment };
    let mut outcome = experiment.run(db).await.unwrap_or_else(|e| panic!("{} failed to run: {e}", experiment.strategy));
    let trace = outcome.trace.take().expect("a traced experiment has a trace");
    (outcome, trace)
}

/// The kinds of one attempt's events, in order.
fn kinds_of(trace: &Trace, worker: usize, increment: u64, attempt: u32) -> Vec<TraceKind> {
    trace
        .events
        .iter()
        .filter(|e| (e.worker, e.increment, e.attempt) == (worker, increment, attempt))
        .map(|e| e.kind)
        .collect()
}

fn commits(trace: &Trace) -> Vec<&TraceEvent> {
    trace.of_kind(TraceKind::Commit).collect()
}

// Both workers read 0 before either writes; both commit 1. The later commit overwrote the earlier's
// increment, on every backend, every time.
async fn naive_under_a_forced_race_shows_the_commit_that_overwrote_the_other(test: TestDb) {
    let db = test.connect().await;
    let (outcome, trace) = traced(&db, Experiment { force_race: true, ..Experiment::new(Strategy::Naive, 2, 1) }).await;
    assert_eq!(outcome.lost, Some(1), "{outcome:#?}");
    assert!(!trace.truncated);
    for worker in 0..2 {
        assert_eq!(
            kinds_of(&trace, worker, 0, 1),
            [TraceKind::Begin, TraceKind::Read, TraceKind::Write, TraceKind::Commit],
            "{trace:#?}"
        );
    }
    let reads: Vec<_> = trace.of_kind(TraceKind::Read).map(|e| (e.like, e.version)).collect();
    assert_eq!(reads, [(Some(0), Some(0)), (Some(0), Some(0))], "{trace:#?}");
    let commits = commits(&trace);
    assert_eq!(commits.iter().map(|c| c.like).collect::<Vec<_>>(), [Some(1), Some(1)], "{trace:#?}");
    let overwrites: Vec<_> = trace.overwrites().collect();
    assert_eq!(overwrites.len(), 1, "exactly one lost update: {trace:#?}");
    let (first, second) = (commits[0], commits[1]);
    assert_eq!(second.overwrote, Some(IncrementId { worker: first.worker, increment: 0 }), "{trace:#?}");
    assert_ne!(first.worker, second.worker);
    // The sequence and the clock both run forward.
    assert!(trace.events.windows(2).all(|w| w[0].seq + 1 == w[1].seq && w[0].t_us <= w[1].t_us), "{trace:#?}");
}

// Both read version 0; one write matches it, the other matches no row: a conflict, then a retry that
// reads the winner's value and commits on top of it. Nothing overwritten.
async fn optimistic_shows_the_conflict_and_its_retry(test: TestDb) {
    let db = test.connect().await;
    let (outcome, trace) =
        traced(&db, Experiment { force_race: true, ..Experiment::new(Strategy::Optimistic, 2, 1) }).await;
    assert_eq!((outcome.acknowledged, outcome.actual, outcome.retries), (2, Some(2), 1), "{outcome:#?}");
    let conflict = trace.of_kind(TraceKind::Conflict).next().unwrap_or_else(|| panic!("no conflict: {trace:#?}"));
    assert_eq!((conflict.detail, conflict.attempt), (Some(ErrorKind::StaleVersion), 1), "{trace:#?}");
    let loser = conflict.worker;
    assert_eq!(
        kinds_of(&trace, loser, 0, 1),
        [TraceKind::Begin, TraceKind::Read, TraceKind::Conflict, TraceKind::Retry],
        "{trace:#?}"
    );
    assert_eq!(
        kinds_of(&trace, loser, 0, 2),
        [TraceKind::Begin, TraceKind::Read, TraceKind::Write, TraceKind::Commit],
        "{trace:#?}"
    );
    let retry_read = trace.events.iter().find(|e| e.worker == loser && e.attempt == 2 && e.kind == TraceKind::Read);
    assert_eq!(retry_read.map(|e| (e.like, e.version)), Some((Some(1), Some(1))), "{trace:#?}");
    let mut committed: Vec<_> = commits(&trace).iter().map(|c| c.like).collect();
    committed.sort();
    assert_eq!(committed, [Some(1), Some(2)]);
    assert_eq!(trace.overwrites().count(), 0, "{trace:#?}");
}

// The test holds the lock (the row's; the database's on SQLite) and writes 41 under it. The worker asks
// for the lock, waits, and reads 41 once the test commits: its lock_acquired comes after the test's
// commit, so it waited.
async fn pessimistic_shows_the_wait_for_a_lock_the_test_holds(test: TestDb) {
    let db = test.connect().await;
    let pk = db.create_post().await.unwrap();
    let mut holder = db.session().await.unwrap();
    holder.begin(TxMode::RowLocking(LockMode::Wait)).await.unwrap();
    holder.read_for_update(pk, LockMode::Wait).await.unwrap();
    holder.write(pk, 41).await.unwrap();

    let experiment = Experiment {
        target: Target::Post(pk),
        lock_timeout: Some(Duration::from_secs(60)),
        ..Experiment::new(Strategy::Pessimistic(LockMode::Wait), 1, 1)
    };
    let run = {
        let db = db.clone();
        tokio::spawn(async move { traced(&db, experiment).await })
    };
    // On a server, the worker is seen waiting before the lock is let go; SQLite's wait for its write
    // lock happens inside the driver and cannot be seen, but what the worker read shows the order.
    wait_for_lock_waiter(&test).await;
    holder.finish(Ok(())).await.unwrap();
    let (outcome, trace) = run.await.unwrap();

    assert_eq!((outcome.acknowledged, outcome.failed), (1, 0), "{outcome:#?}");
    assert_eq!(
        kinds_of(&trace, 0, 0, 1),
        [TraceKind::Begin, TraceKind::LockWait, TraceKind::LockAcquired, TraceKind::Write, TraceKind::Commit],
        "{trace:#?}"
    );
    let acquired = trace.of_kind(TraceKind::LockAcquired).next().unwrap();
    assert_eq!(acquired.like, Some(41), "read after the holder's commit, so after waiting: {trace:#?}");
    assert_eq!(commits(&trace)[0].like, Some(42), "{trace:#?}");
}

/// Polls (the condition, not a guess) until a statement of this database waits for a lock. SQLite
/// shows no waiters: nothing to wait for there.
async fn wait_for_lock_waiter(test: &TestDb) {
    let sql = match test.backend {
        Backend::Postgres => {
            "SELECT COUNT(*)::BIGINT FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'"
        }
        Backend::MySql => {
            "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.processlist \
             WHERE db = DATABASE() AND id <> CONNECTION_ID() AND info LIKE '%FOR UPDATE%'"
        }
        Backend::Sqlite => return,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let count: i64 = match test.backend {
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&test.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            _ => {
                let mut conn = sqlx::MySqlConnection::connect(&test.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        };
        if count > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no statement waited for the lock in 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// A trace is bounded: past its limit events are dropped and it says so. And it costs nothing when off.
async fn a_trace_is_bounded_and_absent_unless_asked_for(test: TestDb) {
    let db = test.connect().await;
    let experiment =
        Experiment { trace: Some(TraceLimit { max_events: 5 }), ..Experiment::new(Strategy::Atomic, 2, 5) };
    let outcome = experiment.run(&db).await.unwrap();
    let trace = outcome.trace.as_ref().unwrap();
    assert_eq!((trace.events.len(), trace.truncated), (5, true), "{trace:#?}");
    assert_eq!(outcome.acknowledged, 10, "the run itself is whole");
    let untraced = Experiment::new(Strategy::Atomic, 2, 5).run(&db).await.unwrap();
    assert!(untraced.trace.is_none());
    // The trace is not part of the outcome's JSON (what the lab prints).
    let json = serde_json::to_value(&outcome).unwrap();
    assert!(json.get("trace").is_none(), "{json}");
}

on_every_backend!(
    naive_under_a_forced_race_shows_the_commit_that_overwrote_the_other,
    optimistic_shows_the_conflict_and_its_retry,
    pessimistic_shows_the_wait_for_a_lock_the_test_holds,
    a_trace_is_bounded_and_absent_unless_asked_for,
);
