//! Shutdown is bounded by the grace period, also when a timed-out request's experiment still holds
//! database connections in the background.

use std::time::{Duration, Instant};

use racelab_testkit::TestDb;

use crate::support::service::{Raw, Settings, detach_a_locked_run};

// The test holds post 1's row lock (with a lock timeout far beyond the test), so the experiment of a
// timed-out request keeps its connections for as long as the test wants. Shutting down must not wait
// for them past the grace.
async fn shutdown_does_not_wait_past_the_grace_for_a_detached_experiment(test: TestDb) {
    let grace = Duration::from_secs(1);
    let settings = Settings {
        request_timeout: Duration::from_millis(300),
        lock_timeout: Duration::from_secs(120),
        shutdown_grace: grace,
        ..Settings::default()
    };
    let app = settings.spawn(&test.url).await;
    let mut holder = detach_a_locked_run(&app, &test).await;
    // The experiment is still running, its workers queued behind the test's lock.
    Raw::connect(&test).await.wait_for_lock_waiter().await;

    let started = Instant::now();
    let server = app.stop();
    // A failure bound, not a wait: without the bound on closing the pool, this never completes while
    // the test holds the lock.
    let stopped = tokio::time::timeout(Duration::from_secs(15), server).await;
    let took = started.elapsed();
    holder.execute("COMMIT").await;
    stopped.expect("run_until returns within the grace").expect("server task").expect("server result");
    assert!(took < grace + Duration::from_secs(2), "shutdown took {took:?} with a grace of {grace:?}");
}

// Server backends only: SQLite has no row lock for the test to hold.
racelab_testkit::on_server_backends!(shutdown_does_not_wait_past_the_grace_for_a_detached_experiment);
