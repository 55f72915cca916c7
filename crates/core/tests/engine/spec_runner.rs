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

/// The events of a run's only permutation, as `(step, what)`: `waits`, `done`, `waited`, or the
/// error kind (`waited deadlock`, `done other`), in the order reported.
fn trace(outcome: &spec::Outcome) -> Vec<(String, String)> {
    outcome.run.permutations[0]
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Waiting { step, .. } => Some((step.clone(), "waits".to_owned())),
            Event::Done { step, waited, answer, .. } => {
                let when = if *waited { "waited" } else { "done" };
                Some((
                    step.clone(),
                    match &answer.error {
                        Some(error) => format!("{when} {}", error.kind),
                        None => when.to_owned(),
                    },
                ))
            }
            _ => None,
        })
        .collect()
}

/// The rows of step `name`'s first table.
fn rows_of(outcome: &spec::Outcome, name: &str) -> Vec<Vec<Option<String>>> {
    outcome.run.permutations[0]
        .events
        .iter()
        .find_map(|event| match event {
            Event::Done { step, answer, .. } if step == name => answer.tables.first().map(|t| t.rows.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

async fn run_text(db: &TestDb, text: &str, timeout: Duration) -> spec::Outcome {
    let url = DatabaseUrl::parse(&db.url).unwrap();
    let spec = spec::parse(text).unwrap();
    spec::run(&url, &spec, &spec.permutations(), timeout).await.unwrap()
}

/// The repository's row-lock spec, written in the SQL all three backends take (no RETURNING, no FOR
/// UPDATE): s2 waits for s1's row lock in its first permutation, nothing waits in its second.
const ROW_LOCK: &str = include_str!("../../../../specs/row-lock.spec");

/// A row lock held by s1 makes s2's write wait, told by the database itself (PostgreSQL's
/// `pg_isolation_test_session_is_blocked`, InnoDB's monitor, SQLite's busy answer): reported waiting,
/// completed once s1 commits, and the second decrement reads 3. The step timeout is a minute, so a
/// wait the runner failed to see would show as a cancelled step, not as this trace.
async fn spec_a_row_lock_is_reported_waiting_then_completed(db: TestDb) {
    let outcome = run_text(&db, ROW_LOCK, Duration::from_secs(60)).await;
    assert_eq!(outcome.stopped, None);
    let expected = [
        ("s1_begin", "done"),
        ("s2_begin", "done"),
        ("s1_take", "done"),
        ("s2_take", "waits"),
        ("s1_commit", "done"),
        ("s2_take", "waited"),
        ("s2_read", "done"),
        ("s2_commit", "done"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(trace(&outcome), expected, "{}", isolationtester::render(&outcome.run));
    assert_eq!(rows_of(&outcome, "s2_read"), vec![vec![Some("3".to_owned())]]);
    // The second permutation, one transaction after the other: nothing waits.
    assert_eq!(outcome.run.permutations.len(), 2);
    let waits = outcome.run.permutations[1].events.iter().filter(|e| matches!(e, Event::Waiting { .. })).count();
    assert_eq!(waits, 0, "{}", isolationtester::render(&outcome.run));
}

/// A statement the backend refuses is that step's error (its message and code, the kind `other`),
/// and the permutation goes on.
async fn spec_a_refused_statement_is_the_steps_error(db: TestDb) {
    let text = "session s1\nstep bad { SELECT * FROM no_such_table; }\nstep good { SELECT 1 AS one; }";
    let outcome = run_text(&db, text, Duration::from_secs(60)).await;
    assert_eq!(outcome.stopped, None);
    assert_eq!(trace(&outcome), [("bad".to_owned(), "done other".to_owned()), ("good".to_owned(), "done".to_owned())]);
    let rendered = isolationtester::render(&outcome.run);
    assert!(rendered.contains("step bad: SELECT * FROM no_such_table;\nERROR:  "), "{rendered}");
    assert!(rendered.contains("no_such_table"), "{rendered}");
    assert_eq!(rows_of(&outcome, "good"), vec![vec![Some("1".to_owned())]]);
}

racelab_testkit::on_every_backend!(
    spec_a_row_lock_is_reported_waiting_then_completed,
    spec_a_refused_statement_is_the_steps_error
);

/// Two sessions take two rows in opposite orders: the server finds the deadlock, fails one of the
/// two second steps with `deadlock` and the other completes; which one is the server's choice
/// (PostgreSQL: the first whose deadlock_timeout ends; InnoDB: the cheaper transaction to roll back).
async fn spec_a_deadlock_fails_one_step_and_the_other_completes(db: TestDb) {
    let text = r#"
setup { CREATE TABLE lockable (id int PRIMARY KEY, v int NOT NULL); }
setup { INSERT INTO lockable VALUES (1, 0), (2, 0); }
teardown { DROP TABLE lockable; }
session s1
step s1_begin { BEGIN; }
step s1_first { UPDATE lockable SET v = v + 1 WHERE id = 1; }
step s1_second { UPDATE lockable SET v = v + 1 WHERE id = 2; }
step s1_end { ROLLBACK; }
session s2
step s2_begin { BEGIN; }
step s2_first { UPDATE lockable SET v = v + 10 WHERE id = 2; }
step s2_second { UPDATE lockable SET v = v + 10 WHERE id = 1; }
step s2_end { ROLLBACK; }
permutation s1_begin s2_begin s1_first s2_first s1_second s2_second s1_end s2_end
"#;
    let outcome = run_text(&db, text, Duration::from_secs(60)).await;
    assert_eq!(outcome.stopped, None);
    let trace = trace(&outcome);
    let rendered = isolationtester::render(&outcome.run);
    assert!(trace.contains(&("s1_second".to_owned(), "waits".to_owned())), "{rendered}");
    let second: Vec<&str> = trace
        .iter()
        .filter(|(step, what)| step.ends_with("_second") && what != "waits")
        .map(|(_, w)| w.as_str())
        .collect();
    assert_eq!(second.len(), 2, "{rendered}");
    assert_eq!(second.iter().filter(|w| w.ends_with("deadlock")).count(), 1, "{rendered}");
    assert_eq!(second.iter().filter(|w| !w.contains(' ')).count(), 1, "{rendered}");
}

racelab_testkit::on_server_backends!(spec_a_deadlock_fails_one_step_and_the_other_completes);

/// SQLite has one writer: the second session's write is refused busy and sent again until the
/// first commits. When the permutation then needs the refused session's next step before the
/// holder's commit, nothing can move: the step timeout gives up on it (no longer sent again) and
/// its busy refusal is its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_sqlite_a_write_refused_busy_past_the_timeout_is_its_error() {
    let db = TestDb::create(Backend::Sqlite).await;
    let text = r#"
setup { CREATE TABLE item (id int PRIMARY KEY, stock int NOT NULL); }
teardown { DROP TABLE item; }
session s1
step s1_begin { BEGIN; }
step s1_take { INSERT INTO item VALUES (1, 5); }
step s1_commit { COMMIT; }
session s2
step s2_begin { BEGIN; }
step s2_take { INSERT INTO item VALUES (2, 5); }
step s2_end { ROLLBACK; }
permutation s1_begin s2_begin s1_take s2_take s2_end s1_commit
"#;
    let outcome = run_text(&db, text, Duration::from_secs(1)).await;
    assert_eq!(outcome.stopped, None);
    let rendered = isolationtester::render(&outcome.run);
    assert!(rendered.contains("step s2_take: INSERT INTO item VALUES (2, 5); <waiting ...>\n"), "{rendered}");
    assert!(rendered.contains("isolationtester: canceling step s2_take after 1 seconds\n"), "{rendered}");
    assert!(rendered.contains("step s2_take: <... completed>\nERROR:  database is locked\n"), "{rendered}");
    assert!(trace(&outcome).contains(&("s2_take".to_owned(), "waited busy".to_owned())), "{rendered}");
}

/// MariaDB takes no level in `BEGIN`: the spec's `BEGIN ISOLATION LEVEL` runs as `SET TRANSACTION
/// ...; START TRANSACTION`, said in the outcome, and the level holds: READ COMMITTED (not MariaDB's
/// default REPEATABLE READ, which would read 10 twice) sees the other session's commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_mariadb_begin_isolation_level_is_translated_and_said() {
    let db = TestDb::create(Backend::MySql).await;
    let text = r#"
setup { CREATE TABLE counter (id int PRIMARY KEY, v int NOT NULL); }
setup { INSERT INTO counter VALUES (1, 10); }
teardown { DROP TABLE counter; }
session reader
step r_begin { BEGIN ISOLATION LEVEL READ COMMITTED; }
step r_read { SELECT v FROM counter WHERE id = 1; }
step r_again { SELECT v FROM counter WHERE id = 1; }
step r_commit { COMMIT; }
session writer
step w_write { UPDATE counter SET v = 11 WHERE id = 1; }
permutation r_begin r_read w_write r_again r_commit
"#;
    let outcome = run_text(&db, text, Duration::from_secs(60)).await;
    assert_eq!(
        outcome.translations,
        ["MariaDB: \"BEGIN ISOLATION LEVEL READ COMMITTED\" runs as \
          \"SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION\""]
    );
    let rendered = isolationtester::render(&outcome.run);
    assert!(rendered.contains("step r_begin: SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION;\n"));
    assert_eq!(rows_of(&outcome, "r_read"), vec![vec![Some("10".to_owned())]], "{rendered}");
    assert_eq!(rows_of(&outcome, "r_again"), vec![vec![Some("11".to_owned())]], "{rendered}");
}

/// Across the nodes of a Galera cluster (`scripts/galera up`; see `racelab_testkit::galera`): the
/// sessions are spread over the nodes (reader on node 1, writer on node 2), so the second write of
/// the same row waits for nothing (row locks are a node's own) and the writer's COMMIT is refused by
/// certification (1213, a deadlock); each step is sent once every node applied the commits before it,
/// so this is the outcome on every run. On one MariaDB server the same write waits and overwrites.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_galera_sessions_on_different_nodes_conflict_at_commit() {
    let cluster = racelab_testkit::galera::GaleraDb::create().await;
    let urls: Vec<DatabaseUrl> = cluster.urls.iter().map(|u| DatabaseUrl::parse(u).unwrap()).collect();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/hermitage/lost-update.spec");
    let spec = spec::parse_file(&path).unwrap();
    let interrupted = std::sync::atomic::AtomicBool::new(false);
    let outcome =
        spec::run_on_nodes(&urls, &spec, &spec.permutations(), Duration::from_secs(60), &interrupted).await.unwrap();
    assert_eq!(outcome.stopped, None);
    let rendered = isolationtester::render(&outcome.run);
    assert!(!rendered.contains("<waiting ...>"), "nothing waits across nodes: {rendered}");
    let failed: Vec<(String, String)> = outcome
        .run
        .permutations
        .iter()
        .flat_map(|p| &p.events)
        .filter_map(|event| match event {
            Event::Done { step, answer: spec::Answer { error: Some(error), .. }, .. } => {
                Some((step.clone(), error.kind.to_string()))
            }
            _ => None,
        })
        .collect();
    let expected = [("w_commit", "deadlock"), ("rr_commit", "deadlock")].map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(failed, expected, "{rendered}");
}

/// A step waiting for a row lock past the step timeout is cancelled by the server's own means
/// (`pg_cancel_backend`, MariaDB's `KILL QUERY`), reported as isolationtester reports it, and its
/// answer is the server's cancel error; the permutation goes on.
async fn spec_a_step_waiting_past_the_timeout_is_cancelled_on_the_server(db: TestDb) {
    let text = r#"
setup { CREATE TABLE held (id int PRIMARY KEY, v int NOT NULL); }
setup { INSERT INTO held VALUES (1, 0); }
teardown { DROP TABLE held; }
session holder
step hold { BEGIN; UPDATE held SET v = 1 WHERE id = 1; }
step release { COMMIT; }
session waiter
step wait { UPDATE held SET v = 2 WHERE id = 1; }
step after { SELECT 1 AS after; }
permutation hold wait after release
"#;
    let outcome = run_text(&db, text, Duration::from_secs(1)).await;
    assert_eq!(outcome.stopped, None);
    let rendered = isolationtester::render(&outcome.run);
    assert!(rendered.contains("step wait: UPDATE held SET v = 2 WHERE id = 1; <waiting ...>\n"), "{rendered}");
    assert!(rendered.contains("isolationtester: canceling step wait after 1 seconds\n"), "{rendered}");
    let code = outcome.run.permutations[0].events.iter().find_map(|e| match e {
        Event::Done { step, answer, .. } if step == "wait" => answer.error.as_ref().and_then(|e| e.code.clone()),
        _ => None,
    });
    let expected = match db.backend {
        Backend::Postgres => "57014",
        _ => "1317", // ER_QUERY_INTERRUPTED
    };
    assert_eq!(code.as_deref(), Some(expected), "{rendered}");
    assert!(rendered.contains("step release: COMMIT;\n"), "{rendered}");
}

racelab_testkit::on_server_backends!(spec_a_step_waiting_past_the_timeout_is_cancelled_on_the_server);
