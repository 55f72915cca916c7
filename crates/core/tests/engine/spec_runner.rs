//! The spec runner's own behaviour on PostgreSQL beyond what the differential tests compare: the
//! step timeout (cancelled as isolationtester cancels), a failing setup (the run stops, as
//! isolationtester stops), an interrupted run, and the teardown run after both.

use std::time::Duration;

use racelab_core::spec::{self, Event, isolationtester};
use racelab_core::{Backend, DatabaseUrl};
use racelab_testkit::TestDb;

/// The lock waits of this database's backends (pg_locks is the whole server's).
const WAITING_HERE: &str = "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid IN \
                            (SELECT pid FROM pg_stat_activity WHERE datname = current_database())";

const HELD: &str = r#"
setup { CREATE TABLE held (id int PRIMARY KEY); INSERT INTO held VALUES (1); }
teardown { DROP TABLE held; }
session holder
step hold { BEGIN; SELECT id FROM held WHERE id = 1 FOR UPDATE; }
step release { COMMIT; }
session waiter
step wait { SELECT id FROM held WHERE id = 1 FOR UPDATE; }
step after { SELECT 1 AS after; }
permutation hold wait after release
"#;

/// `wait` waits for `hold`'s lock, and the waiter's next step (`after`) is due before `release`:
/// as isolationtester does, the runner waits for `wait` to complete before sending `after`, and
/// only the step timeout ends that wait. The step is cancelled (pg_cancel_backend), its error
/// reported, and the permutation goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_a_step_waiting_past_the_timeout_is_cancelled_and_reported() {
    let test = TestDb::create(Backend::Postgres).await;
    let url = DatabaseUrl::parse(&test.url).unwrap();
    let spec = spec::parse(HELD).unwrap();
    let outcome = spec::run(&url, &spec, &spec.permutations(), Duration::from_secs(1)).await.unwrap();
    assert_eq!(outcome.stopped, None);
    let text = isolationtester::render(&outcome.run);
    assert!(text.contains("step wait: SELECT id FROM held WHERE id = 1 FOR UPDATE; <waiting ...>\n"), "{text}");
    assert!(text.contains("isolationtester: canceling step wait after 1 seconds\n"), "{text}");
    assert!(text.contains("step wait: <... completed>\nERROR:  canceling statement due to user request\n"), "{text}");
    let canceled = outcome.run.permutations[0].events.iter().find_map(|e| match e {
        Event::Done { step, answer, .. } if step == "wait" => answer.error.as_ref().map(|e| e.code.clone()),
        _ => None,
    });
    assert_eq!(canceled, Some(Some("57014".to_owned())));
    assert!(text.contains("step release: COMMIT;\n"), "{text}");
}

/// A setup that fails stops the run as isolationtester stops it (its message, nothing after), and
/// the teardown is still tried: the table the first setup created is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_a_failing_setup_stops_the_run_and_the_teardown_still_runs() {
    let test = TestDb::create(Backend::Postgres).await;
    let url = DatabaseUrl::parse(&test.url).unwrap();
    let text = "setup { CREATE TABLE left_behind (id int); }\nsetup { SELECT * FROM no_such_table; }\n\
                teardown { DROP TABLE left_behind; }\nsession s1 step a { SELECT 1; }";
    let spec = spec::parse(text).unwrap();
    let outcome = spec::run(&url, &spec, &spec.permutations(), Duration::from_secs(5)).await.unwrap();
    let stopped = outcome.stopped.expect("the run stops");
    assert_eq!(stopped.message, "setup failed: ERROR:  relation \"no_such_table\" does not exist");
    assert!(matches!(
        outcome.run.permutations[0].events.as_slice(),
        [Event::PartFailed { error, .. }] if error.code.as_deref() == Some("42P01")
    ));
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&test.url).await.unwrap();
    let left: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('left_behind')::text").fetch_one(&mut conn).await.unwrap();
    assert_eq!(left, None, "the teardown ran");
}

/// Interrupted while a step waits for a lock the test holds (seen waiting in pg_locks, not
/// guessed; only this test's database's backends count: the server is shared with other tests): the run stops with `interrupted`, the waiting step is cancelled and the sessions
/// rolled back (the test's own lock is then free of waiters), and the teardown has dropped the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_an_interrupted_run_cancels_rolls_back_and_tears_down() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let test = TestDb::create(Backend::Postgres).await;
    let url = DatabaseUrl::parse(&test.url).unwrap();
    let mut holder = <sqlx::PgConnection as sqlx::Connection>::connect(&test.url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE outside (id int PRIMARY KEY); INSERT INTO outside VALUES (1)")
        .execute(&mut holder)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN; SELECT id FROM outside WHERE id = 1 FOR UPDATE").execute(&mut holder).await.unwrap();
    let text = "setup { CREATE TABLE mine (id int); }\nteardown { DROP TABLE mine; }\n\
                session s1 setup { BEGIN; } step take { SELECT id FROM outside WHERE id = 1 FOR UPDATE; }\n\
                step done { COMMIT; }";
    let spec = spec::parse(text).unwrap();
    let interrupted = Arc::new(AtomicBool::new(false));
    let run = {
        let (url, spec, flag) = (url.clone(), spec.clone(), Arc::clone(&interrupted));
        tokio::spawn(async move {
            let permutations = spec.permutations();
            spec::run_until(&url, &spec, &permutations, Duration::from_secs(60), &flag).await
        })
    };
    let mut observer = <sqlx::PgConnection as sqlx::Connection>::connect(&test.url).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(WAITING_HERE).fetch_one(&mut observer).await.unwrap();
        if waiting > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the step never waited");
        tokio::task::yield_now().await;
    }
    interrupted.store(true, Ordering::Relaxed);
    let outcome = run.await.unwrap().unwrap();
    let stopped = outcome.stopped.expect("stopped");
    assert_eq!(stopped.message, spec::INTERRUPTED);
    assert!(stopped.not_cleaned.is_empty(), "{:?}", stopped.not_cleaned);
    let waiting: i64 = sqlx::query_scalar(WAITING_HERE).fetch_one(&mut observer).await.unwrap();
    assert_eq!(waiting, 0, "the waiting step was cancelled");
    let left: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('mine')::text").fetch_one(&mut observer).await.unwrap();
    assert_eq!(left, None, "the teardown ran");
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
}
