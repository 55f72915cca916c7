//! The racelab binary run as a user runs it, in a neutral folder, with nothing from the test's own
//! environment that would change what it connects to or prints.

use std::process::{Command, Output, Stdio};

pub fn racelab(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_racelab"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("the racelab binary runs")
}

/// [`racelab`] on a blocking thread, so the test's runtime goes on.
pub async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || racelab(&args)).await.expect("the command's thread")
}
