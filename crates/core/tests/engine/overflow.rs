//! A counter at the most a BIGINT holds (2^63 - 1), on real PostgreSQL, MariaDB and SQLite: every
//! strategy refuses the increment as [`ErrorKind::CounterOverflow`] naming the post and its value, a
//! batch of likes that would pass it is refused whole (and one that reaches it exactly is made), a
//! `version` at the maximum refuses the write, and a total over the slots past it is refused rather
//! than wrapped, clamped or read as a REAL. Nothing is ever stored but an integer.

use std::str::FromStr;
use std::time::Duration;

use racelab_core::db::{Expected, Precondition};
use racelab_core::error::AtMaximum;
use racelab_core::likes::{LikeRequest, Liked, Liker};
use racelab_core::strategy::Step;

use racelab_core::experiment::Target;
use racelab_core::{Backend, Database, ErrorKind, Experiment, LockMode, Pk, RetryPolicy, Strategy};
use racelab_testkit::{TestDb, on_every_backend};

use crate::support::liked::{answer, made_counts};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, Connection, Row};

const MAX: i64 = i64::MAX;

/// Runs `sql` on a connection of the test's own, outside racelab; the first column of its row, as text,
/// if it returns one.
async fn raw(test: &TestDb, sql: &str) -> Option<String> {
    let url = &test.url;
    match test.backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(AssertSqlSafe(sql)).fetch_optional(&mut c).await.unwrap().map(|row| row.get(0))
        }
        Backend::MySql => {
            let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
            sqlx::query(AssertSqlSafe(sql)).fetch_optional(&mut c).await.unwrap().map(|row| row.get(0))
        }
        Backend::Sqlite => {
            let mut c =
                sqlx::SqliteConnection::connect_with(&SqliteConnectOptions::from_str(url).unwrap()).await.unwrap();
            sqlx::query(AssertSqlSafe(sql)).fetch_optional(&mut c).await.unwrap().map(|row| row.get(0))
        }
    }
}

fn like_column(backend: Backend) -> &'static str {
    if backend == Backend::MySql { "`like`" } else { r#""like""# }
}

/// `like,version` of post `pk` as stored, read by the test itself; on SQLite also each value's storage
/// class, which must stay `integer` (SQLite turns an overflowing sum into a REAL without a word).
async fn stored(test: &TestDb, pk: Pk) -> String {
    let like = like_column(test.backend);
    let sql = match test.backend {
        Backend::Postgres => format!("SELECT {like}::text || ',' || version::text FROM posts WHERE pk = {pk}"),
        Backend::MySql => format!("SELECT CONCAT({like}, ',', version) FROM posts WHERE pk = {pk}"),
        Backend::Sqlite => format!(
            "SELECT typeof({like}) || ':' || {like} || ',' || typeof(version) || ':' || version FROM posts WHERE pk = {pk}"
        ),
    };
    let text = raw(test, &sql).await.expect("the post's row");
    if test.backend == Backend::Sqlite {
        assert!(!text.contains("real"), "SQLite stored a REAL: {text}");
        return text.replace("integer:", "");
    }
    text
}

/// A new post whose `like` is `like` (set through the resource API, as a client's PATCH does).
async fn post_at(db: &Database, like: i64) -> Pk {
    let pk = db.create_post().await.unwrap();
    assert!(matches!(db.set_like_if_version(pk, like, &Expected::Any).await.unwrap(), Precondition::Met(_)));
    pk
}

fn strategies(backend: Backend) -> Vec<Strategy> {
    let mut all = Strategy::all_for(backend);
    // The sharded increment writes a slot and never reads the total: see the liker's test below.
    all.retain(|s| !matches!(s, Strategy::Sharded { .. }));
    all.extend([Strategy::Pessimistic(LockMode::NoWait), Strategy::Pessimistic(LockMode::SkipLocked)]);
    all
}

// Before: `atomic` answered PostgreSQL's 22003 and MariaDB's 1690 as `other`, SQLite stored a REAL, and
// the read-modify-write strategies computed `like + 1` in Rust, which panics in a debug build (and wraps
// to -2^63 in a release one).
async fn every_strategy_refuses_an_increment_past_the_maximum(test: TestDb) {
    let db = test.connect().await;
    for strategy in strategies(test.backend) {
        let pk = post_at(&db, MAX).await;
        let before = stored(&test, pk).await;
        let mut session = db.session().await.unwrap();
        let err = strategy.attempt(&mut session, Step::new(pk, 0)).await.expect_err(strategy.name());
        assert_eq!(err.kind(), ErrorKind::CounterOverflow, "{strategy}: {err}");
        assert!(!err.is_retryable(), "{strategy}");
        let at = AtMaximum { post: pk, counter: "like", value: MAX, adding: 1 };
        assert_eq!(err.counter_at_maximum(), Some(at), "{strategy}: {err}");
        assert!(err.to_string().contains(&format!("post {pk} has like {MAX}")), "{strategy}: {err}");
        drop(session);
        assert_eq!(stored(&test, pk).await, before, "{strategy}: nothing written");
    }
}

// A batch (what --combine-likes hands over) adds its size in one write: one that would pass the maximum
// is refused whole, its key not kept; one that reaches it exactly is made, each like with its count (the
// last one's count is the maximum itself), and the next like is refused. With `sharded` the total is
// read in the like's own transaction, so a refused like does not stay in its slot.
async fn a_batch_past_the_maximum_is_refused_whole_and_one_up_to_it_is_made(test: TestDb) {
    let db = test.connect().await;
    let mut safe = strategies(test.backend);
    safe.retain(|s| !matches!(s, Strategy::Naive | Strategy::VersionedNoRetry));
    safe.push(Strategy::Sharded { slots: 4 });
    for strategy in safe {
        let pk = post_at(&db, MAX - 2).await;
        let liker = Liker::new(strategy, RetryPolicy::default()).unwrap();
        let key = format!("{strategy}-keyed");
        let three = [LikeRequest::default(), LikeRequest::keyed(key.clone(), "f"), LikeRequest::default()];

        let err = liker.like(&db, pk, &three, answer).await.expect_err(strategy.name());
        assert_eq!(err.kind(), ErrorKind::CounterOverflow, "{strategy}: {err}");
        assert_eq!(err.counter_at_maximum().map(|at| at.post), Some(pk), "{strategy}: {err}");
        assert_eq!(db.read_total(pk).await.unwrap().like, MAX - 2, "{strategy}: nothing of the batch counted");

        let two = liker.like(&db, pk, &three[..2], answer).await.unwrap_or_else(|err| panic!("{strategy}: {err}"));
        assert_eq!(made_counts(&two.results), vec![MAX - 1, MAX], "{strategy}: the key was not kept by the refusal");
        assert_eq!(db.read_total(pk).await.unwrap().like, MAX, "{strategy}");

        let err = liker.like(&db, pk, &[LikeRequest::default()], answer).await.expect_err(strategy.name());
        assert_eq!(err.kind(), ErrorKind::CounterOverflow, "{strategy}: {err}");
        // The keyed like, sent again, is its stored answer: not refused, not counted.
        let again = liker.like(&db, pk, &three[1..2], answer).await.unwrap();
        assert_eq!(again.results, vec![Liked::Replayed { status: 200, body: answer(MAX).1 }], "{strategy}");
        assert_eq!(db.read_total(pk).await.unwrap().like, MAX, "{strategy}");
        if !matches!(strategy, Strategy::Sharded { .. }) {
            stored(&test, pk).await;
        }
    }
}

// Every write bumps `version`: at the maximum, the write is refused (PostgreSQL 22003, MariaDB 1690,
// SQLite's guard), never wrapped nor stored as a REAL. Before: `other` on the servers, and on SQLite
// a REAL version that no read could decode.
async fn a_version_at_the_maximum_refuses_the_write(test: TestDb) {
    let db = test.connect().await;
    let pk = db.create_post().await.unwrap();
    raw(&test, &format!("UPDATE posts SET version = {MAX} WHERE pk = {pk}")).await;

    let err = db.set_like_if_version(pk, 5, &Expected::Any).await.expect_err("a write past the maximum version");
    assert_eq!(err.kind(), ErrorKind::CounterOverflow, "{err}");
    let err = db.set_like_if_version(pk, 5, &Expected::OneOf(vec![MAX])).await.expect_err("the same, conditional");
    assert_eq!(err.kind(), ErrorKind::CounterOverflow, "{err}");
    let mut session = db.session().await.unwrap();
    let err = Strategy::Atomic.attempt(&mut session, Step::new(pk, 0)).await.expect_err("atomic");
    assert_eq!(err.kind(), ErrorKind::CounterOverflow, "{err}");
    assert_eq!(stored(&test, pk).await, format!("0,{MAX}"));
}

// The total a reader sees is the post's `like` plus its slots': past the maximum it is refused, naming
// the post, where PostgreSQL's cast raised 22003 (`other`), MariaDB's clamped it to the maximum without
// a word, and SQLite made it a REAL.
async fn a_total_past_the_maximum_is_refused_not_wrapped(test: TestDb) {
    let db = test.connect().await;
    let pk = post_at(&db, MAX).await;
    let like = like_column(test.backend);
    raw(&test, &format!("INSERT INTO post_slots (post, slot, {like}, version) VALUES ({pk}, 0, 1, 1)")).await;

    let err = db.read_total(pk).await.expect_err("a total past the maximum");
    assert_eq!(err.kind(), ErrorKind::CounterOverflow, "{err}");
    assert_eq!(err.counter_at_maximum(), Some(AtMaximum { post: pk, counter: "like", value: MAX, adding: 1 }));
}

// A sharded experiment writes its slots and then reads the total, which is past the maximum: the run
// ends at once with the counter unread as `counter_overflow`. Before, that read was taken for a
// database coming back and tried again for the whole settle window (here 5 minutes; the bound below
// fails it long before).
async fn a_sharded_run_past_the_maximum_ends_with_the_total_unread(test: TestDb) {
    let db = test.connect().await;
    let pk = post_at(&db, MAX).await;
    let experiment = Experiment {
        target: Target::Post(pk),
        settle_timeout: Duration::from_secs(300),
        ..Experiment::new(Strategy::Sharded { slots: racelab_core::strategy::DEFAULT_SLOTS }, 2, 3)
    };
    let outcome = tokio::time::timeout(Duration::from_secs(60), experiment.run(&db))
        .await
        .expect("the run ended without waiting out the settle window")
        .expect("the run ran");
    assert_eq!(outcome.counter_error, Some(ErrorKind::CounterOverflow), "{outcome:?}");
    assert_eq!((outcome.like_after, outcome.actual, outcome.lost), (None, None, None), "{outcome:?}");
}

on_every_backend!(
    a_sharded_run_past_the_maximum_ends_with_the_total_unread,
    every_strategy_refuses_an_increment_past_the_maximum,
    a_batch_past_the_maximum_is_refused_whole_and_one_up_to_it_is_made,
    a_version_at_the_maximum_refuses_the_write,
    a_total_past_the_maximum_is_refused_not_wrapped,
);
