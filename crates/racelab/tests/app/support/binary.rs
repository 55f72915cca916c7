//! The racelab binary run as a user runs it, with nothing from the test's own environment that would
//! change what it connects to or prints. It never decides what a test asserts.

use std::process::{Command, Output, Stdio};

/// The binary with `DATABASE_URL`, `RACELAB_INIT_SQL` and `RUST_LOG` removed: every test says what it
/// connects to, runs and logs in its arguments.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_racelab"));
    command.env_remove("DATABASE_URL").env_remove("RACELAB_INIT_SQL").env_remove("RUST_LOG");
    command
}

/// [`command`] with `args`, in a neutral folder, with no input, run to its end.
pub fn racelab(args: &[String]) -> Output {
    command()
        .args(args)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .expect("the racelab binary runs")
}

/// [`racelab`] on a blocking thread, so the test's runtime goes on.
pub async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || racelab(&args)).await.expect("the command's thread")
}

/// What the binary wrote, as text (bytes that are not UTF-8 shown as U+FFFD).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
