//! The pool never hands a request a connection the server ended while it sat idle: one idle for
//! longer than [`PING_AFTER_IDLE`] is pinged first, and a dead one is replaced by a new connection.
//! (One handed back moments ago is trusted on its release ping, so a hot post's likes pay no ping.)

use std::time::{Duration, Instant};

use racelab_core::db::PING_AFTER_IDLE;
use racelab_core::likes::{LikeRequest, Liked, Liker};
use racelab_core::{Backend, RetryPolicy, Strategy};
use racelab_testkit::{TestDb, on_server_backends};

use crate::support::liked::answer;
use sqlx::{AssertSqlSafe, Connection, Executor, Row};

async fn like_once(liker: &Liker, db: &racelab_core::Database, pk: i64) -> i64 {
    let batch = liker.like(db, pk, &[LikeRequest::default()], answer).await.expect("the like is made");
    match batch.results[..] {
        [Liked::Made { like, .. }] => like,
        ref other => panic!("expected one made like, got {other:?}"),
    }
}

// A pool of one connection, so the like after the kill can only succeed on a replacement.
async fn a_connection_ended_while_idle_is_replaced_not_failed(test: TestDb) {
    let mut options = test.options();
    options.max_connections = 1;
    let db = test.connect_with(options).await;
    let pk = db.create_post().await.unwrap();
    let liker = Liker::new(Strategy::Atomic, RetryPolicy::default()).unwrap();
    assert_eq!(like_once(&liker, &db, pk).await, 1);

    let id = db.session().await.unwrap().connection_id().await.unwrap().expect("servers have connection ids");
    end_connection(&test, id).await;
    // The precondition of the check, not a race: the pool's connection has sat idle for longer
    // than the limit (the pool measures it from its release).
    tokio::time::sleep(PING_AFTER_IDLE * 2).await;

    assert_eq!(like_once(&liker, &db, pk).await, 2, "the like went to a new connection");
    let now = db.session().await.unwrap().connection_id().await.unwrap().unwrap();
    assert_ne!(now, id, "the ended connection was replaced");
    assert_eq!(db.read_total(pk).await.unwrap().like, 2);
}

on_server_backends!(a_connection_ended_while_idle_is_replaced_not_failed);

/// Ends connection `id` from an administrator's connection, and waits (bounded) until the server no
/// longer lists it, so the pooled connection is dead before the test goes on.
async fn end_connection(test: &TestDb, id: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    match test.backend {
        Backend::Postgres => {
            let mut admin = sqlx::PgConnection::connect(&test.url).await.unwrap();
            admin.execute(AssertSqlSafe(format!("SELECT pg_terminate_backend({id})"))).await.unwrap();
            let sql = format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {id}");
            while admin.fetch_one(AssertSqlSafe(sql.clone())).await.unwrap().get::<i64, _>(0) > 0 {
                assert!(Instant::now() < deadline, "connection {id} still listed 10 s after it was ended");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        _ => {
            let mut admin = sqlx::MySqlConnection::connect(&test.url).await.unwrap();
            admin.execute(AssertSqlSafe(format!("KILL {id}"))).await.unwrap();
            let sql = format!("SELECT count(*) FROM information_schema.processlist WHERE id = {id}");
            while admin.fetch_one(AssertSqlSafe(sql.clone())).await.unwrap().get::<i64, _>(0) > 0 {
                assert!(Instant::now() < deadline, "connection {id} still listed 10 s after it was ended");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
