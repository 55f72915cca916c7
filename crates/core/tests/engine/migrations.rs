//! Migrations run on connect, so processes that start together migrate together: each must succeed,
//! none may see another's half-applied migration.

use racelab_core::Database;
use racelab_testkit::{TestDb, on_every_backend};

// Before: on MariaDB one of four processes failed with "migration 1 is partially applied" (sqlx's
// migration lock, GET_LOCK with a negative timeout, is no lock at all there).
async fn processes_that_start_together_all_migrate(test: TestDb) {
    let connects = (0..4).map(|_| {
        let options = test.options();
        tokio::spawn(async move { Database::connect(options).await })
    });
    for connect in connects.collect::<Vec<_>>() {
        let db = connect.await.expect("task").unwrap_or_else(|e| panic!("a concurrent connect failed: {e}"));
        let pk = db.create_post().await.expect("the schema is there");
        assert_eq!(db.load_post(pk).await.expect("the post").like, 0);
        db.close().await;
    }
}

on_every_backend!(processes_that_start_together_all_migrate);
