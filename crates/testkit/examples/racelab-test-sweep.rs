//! Drops the test databases that killed test processes left behind (see `racelab_testkit::sweep`):
//! those made more than ten minutes ago, that nobody uses. `scripts/test` runs it first.
//!
//! ```sh
//! cargo run -q -p racelab-testkit --example racelab-test-sweep
//! ```
//!
//! An example rather than a binary: with a second binary in the workspace, the README's
//! `cargo run --release -- lab` at the root could not tell which one to run.

use std::time::{Duration, SystemTime};

/// No test lives this long: nextest ends a test at 5 min (`.config/nextest.toml`), so a test database
/// older than this belongs to no running test, of this run or of another one on the same server.
const OLDER_THAN: Duration = Duration::from_secs(10 * 60);

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let before = SystemTime::now() - OLDER_THAN;
    let report = racelab_testkit::sweep(before).await;
    for dropped in &report.dropped {
        eprintln!("racelab-test-sweep: dropped the leftover {dropped}");
    }
    for in_use in &report.in_use {
        eprintln!("racelab-test-sweep: left {in_use} alone: somebody is connected to it");
    }
    // A server that does not answer is the tests' to report, with the variable to set.
    for problem in &report.problems {
        eprintln!("racelab-test-sweep: could not sweep {problem}");
    }
}
