//! The pool never hands a request a connection the server ended while it sat idle: one idle for
//! longer than [`PING_AFTER_IDLE`] is pinged first, and a dead one is replaced by a new connection.
//! One handed back clean moments ago is trusted on the answer it just had, so the likes of a hot post,
//! one after another, send their statements and no ping at all.

use std::time::{Duration, Instant};

use racelab_core::db::PING_AFTER_IDLE;
use racelab_core::likes::{LikeRequest, Liked, Liker};
use racelab_core::{Backend, ConnectOptions, Database, DatabaseUrl, RetryPolicy, Strategy};
use racelab_testkit::proxy::TcpProxy;
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

/// An account that may hold two connections, both in the pool: one handed out, one handed back. A
/// setup statement (creating a post) and a worker's session, each asked for while the pool was opening a
/// third connection the server refuses, get the pool's free connection instead of waiting out the
/// acquire timeout in sqlx's retries and failing "pool timed out" (the server's refusal is the answer
/// only when none of the pool's own connections is free). PostgreSQL only: sqlx retries its 53300 in
/// silence, where MariaDB's 1226 fails the acquire at once with the server's words
/// (`cli::out_of_connections_is_named_as_such` covers that).
async fn a_refused_new_connection_waits_for_the_pools_own(test: TestDb) {
    let account = racelab_testkit::limited_account::LimitedAccount::create(&test, 2).await;
    let mut options = test.options();
    options.url = racelab_core::DatabaseUrl::parse(&account.url).expect("the account's URL");
    options.max_connections = 4;
    options.acquire_timeout = Duration::from_secs(5);
    let db = racelab_core::Database::connect(options).await.expect("the account connects");
    let pk = db.create_post().await.unwrap();

    for round in ["create_post", "sessions"] {
        let mut held = db.sessions(2).await.expect("the account's two connections");
        assert_eq!(db.pool_size(), 2);
        let asked_at = Instant::now();
        let waiting = tokio::spawn({
            let db = db.clone();
            async move {
                match round {
                    "create_post" => db.create_post().await.map(drop),
                    _ => db.sessions(1).await.map(drop),
                }
            }
        });
        // The precondition, observed rather than slept for: the pool is opening a third connection,
        // which the server refuses while the two above are open.
        let deadline = Instant::now() + Duration::from_secs(5);
        while db.pool_size() < 3 {
            assert!(Instant::now() < deadline, "{round}: the pool never tried a third connection");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(held.pop());
        let answer = waiting.await.expect("the task ends");
        assert!(answer.is_ok(), "{round}: {answer:?}");
        assert!(asked_at.elapsed() < Duration::from_secs(4), "{round} took {:?}", asked_at.elapsed());
        drop(held);
    }
    assert_eq!(db.read_total(pk).await.unwrap().like, 0);
    db.close().await;
}

mod a_refused_new_connection_waits_for_the_pools_own {
    racelab_testkit::backend_test!(a_refused_new_connection_waits_for_the_pools_own, postgres, Postgres);
}

/// What a client sends to ask a server whether the connection works, and nothing else does: PostgreSQL's
/// bare Sync (a statement ends with one too, so those are counted apart), MySQL's COM_PING packet.
fn ping_bytes(backend: Backend) -> &'static [u8] {
    match backend {
        Backend::Postgres => b"S\0\0\0\x04",
        _ => b"\x01\0\0\0\x0e",
    }
}

// Likes one after another on one post (what a hot post liked by one client is): before, each sent a
// ping as its connection went back to the pool, a second round trip per like. A like whose
// connection sat idle past PING_AFTER_IDLE (a stalled machine) may still be pinged: the test
// allows a ping for each such gap, measured around the likes, and there are none on a machine that
// keeps up.
async fn likes_in_a_row_send_no_ping(test: TestDb) {
    let (upstream, rewrite) = TcpProxy::route(&test.url);
    let proxy = TcpProxy::start(upstream).await;
    let options = ConnectOptions::new(DatabaseUrl::parse(&rewrite(proxy.port)).expect("proxied URL parses"));
    let db = Database::connect(options).await.expect("connects through the proxy");
    let pk = db.create_post().await.unwrap();
    let liker = Liker::new(Strategy::Atomic, RetryPolicy::default()).unwrap();
    like_once(&liker, &db, pk).await;

    const LIKES: usize = 30;
    let pings = proxy.count_sent(ping_bytes(test.backend));
    let mut stalls = 0;
    let mut previous_start = Instant::now();
    for n in 0..LIKES {
        let start = Instant::now();
        like_once(&liker, &db, pk).await;
        // The connection sat idle at most from the start of the like before to the end of this one.
        if n > 0 && previous_start.elapsed() > PING_AFTER_IDLE {
            stalls += 1;
        }
        previous_start = start;
    }
    let sent = pings.load(std::sync::atomic::Ordering::SeqCst);
    let pings = match test.backend {
        // One Sync ends each like's statement.
        Backend::Postgres => sent.checked_sub(LIKES).unwrap_or_else(|| panic!("{sent} Syncs for {LIKES} likes")),
        _ => sent,
    };
    assert!(pings <= stalls, "{pings} pings sent for {LIKES} likes in a row ({stalls} gaps past {PING_AFTER_IDLE:?})");
    assert_eq!(db.read_total(pk).await.unwrap().like, LIKES as i64 + 1);
}

on_server_backends!(likes_in_a_row_send_no_ping);
