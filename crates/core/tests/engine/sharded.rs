//! The sharded counter on real PostgreSQL, MariaDB and SQLite: every acknowledged increment is in the
//! total (the post's own `like` plus its slots), the increments really are spread over slots, a reset
//! clears the slots, and a missing post gets no slot.

use racelab_core::db::Counter;
use racelab_core::experiment::Target;
use racelab_core::strategy::Step;
use racelab_core::{Backend, ErrorKind, Experiment, Outcome, Strategy};
use racelab_testkit::{TestDb, on_every_backend};
use sqlx::Connection;

async fn run(db: &racelab_core::Database, experiment: Experiment) -> Outcome {
    experiment.run(db).await.unwrap_or_else(|e| panic!("{} failed to run: {e}", experiment.strategy))
}

/// The slot rows post `pk` has, counted behind racelab's back.
async fn slot_rows(test: &TestDb, pk: i64) -> i64 {
    let sql = || sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM post_slots WHERE post = {pk}"));
    let count = match test.backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&test.url).await.expect("connect");
            sqlx::query_scalar(sql()).fetch_one(&mut c).await
        }
        Backend::MySql => {
            let mut c = sqlx::MySqlConnection::connect(&test.url).await.expect("connect");
            sqlx::query_scalar(sql()).fetch_one(&mut c).await
        }
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&test.url).await.expect("connect");
            sqlx::query_scalar(sql()).fetch_one(&mut c).await
        }
    };
    count.expect("count slot rows")
}

async fn total_equals_acknowledged_at_32_workers(test: TestDb) {
    let db = test.connect_wide().await;
    let strategy = Strategy::Sharded { slots: 64 };
    let outcome = run(&db, Experiment::new(strategy, 32, 50)).await;
    assert_eq!((outcome.expected, outcome.acknowledged, outcome.failed), (1600, 1600, 0), "{outcome:#?}");
    assert_eq!((outcome.actual, outcome.lost, outcome.foreign_writes), (Some(1600), Some(0), 0), "{outcome:#?}");
    assert_eq!(outcome.strategy.name(), "sharded");

    // The post's own row was not written: the count is all in the slots, and spread over them.
    let row = db.load_post(outcome.post).await.unwrap();
    assert_eq!((row.like, row.version), (0, 0));
    let rows = slot_rows(&test, outcome.post).await;
    assert!((2..=64).contains(&rows), "1600 increments over 64 slots used {rows} slot rows");
    assert_eq!(db.read_total(outcome.post).await.unwrap(), Counter { like: 1600, version: 1600 });
}

// Each increment returns its slot's new value, so the values tell which slots were used: every slot
// used returns 1 once, then 2, and so on. One slot gives 1, 2, 3...; several give repeats.
async fn increments_are_spread_over_the_slots_and_return_the_slots_value(test: TestDb) {
    let db = test.connect().await;
    let mut session = db.session().await.unwrap();
    for (slots, spread) in [(1, false), (64, true)] {
        let pk = db.create_post().await.unwrap();
        let mut values = Vec::new();
        for n in 0..50 {
            let step = Step::new(pk, 0);
            values.push(
                Strategy::Sharded { slots }.attempt(&mut session, step).await.unwrap_or_else(|e| panic!("{n}: {e}")),
            );
        }
        let used = values.iter().filter(|v| **v == 1).count() as i64;
        assert_eq!(used, slot_rows(&test, pk).await, "{values:?}");
        for k in 1..50 {
            let at = |k: i64| values.iter().filter(|v| **v == k).count();
            assert!(at(k) >= at(k + 1), "each slot counts 1, 2, 3...: {values:?}");
        }
        assert_eq!(used > 1, spread, "{slots} slots: {values:?}");
        assert_eq!(db.read_total(pk).await.unwrap(), Counter { like: 50, version: 50 });
    }
}

// The accounting reads the post and its slots together: increments of one post by another strategy
// and by the sharded one add up, and a reset clears both.
async fn the_total_is_the_post_plus_its_slots_and_a_reset_clears_both(test: TestDb) {
    let db = test.connect().await;
    let pk = db.create_post().await.unwrap();
    let on_post = |strategy| Experiment { target: Target::Post(pk), ..Experiment::new(strategy, 2, 5) };
    let atomic = run(&db, on_post(Strategy::Atomic)).await;
    assert_eq!((atomic.like_before, atomic.like_after), (0, Some(10)));
    let sharded = run(&db, on_post(Strategy::Sharded { slots: 8 })).await;
    assert_eq!((sharded.like_before, sharded.like_after, sharded.lost), (10, Some(20), Some(0)), "{sharded:#?}");
    let atomic = run(&db, on_post(Strategy::Atomic)).await;
    assert_eq!((atomic.like_before, atomic.like_after, atomic.lost), (20, Some(30), Some(0)), "{atomic:#?}");
    assert_eq!(db.read_total(pk).await.unwrap(), Counter { like: 30, version: 30 });
    assert!(slot_rows(&test, pk).await >= 1);

    db.reset_post(pk).await.unwrap();
    assert_eq!(db.read_total(pk).await.unwrap(), Counter { like: 0, version: 0 });
    assert_eq!(slot_rows(&test, pk).await, 0, "the reset deleted the slots");
    // A slot write moves the total's version too: during a run, someone else's slot write is a
    // foreign write, as a write to the post's own row is.
    let mut outsider = db.session().await.unwrap();
    let before = db.read_total(pk).await.unwrap();
    outsider.increment_slot(pk, 3).await.unwrap();
    let after = db.read_total(pk).await.unwrap();
    assert_eq!((after.like - before.like, after.version - before.version), (1, 1));
}

async fn a_missing_post_gets_no_slot(test: TestDb) {
    let db = test.connect().await;
    let missing = db.create_post().await.unwrap() + 1000;
    let mut session = db.session().await.unwrap();
    let err = session.increment_slot(missing, 0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&format!("post {missing} does not exist")), "{err}");
    let step = Step::new(missing, 0);
    let err = Strategy::Sharded { slots: 4 }.attempt(&mut session, step).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(slot_rows(&test, missing).await, 0, "no orphan slot");
    assert_eq!(db.read_total(missing).await.unwrap_err().kind(), ErrorKind::NotFound);
    // The session is still usable after the refused statement.
    let pk = db.create_post().await.unwrap();
    assert_eq!(session.increment_slot(pk, 0).await.unwrap(), 1);
}

on_every_backend!(
    total_equals_acknowledged_at_32_workers,
    increments_are_spread_over_the_slots_and_return_the_slots_value,
    the_total_is_the_post_plus_its_slots_and_a_reset_clears_both,
    a_missing_post_gets_no_slot,
);
