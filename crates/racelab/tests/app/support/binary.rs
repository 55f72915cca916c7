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

/// The lines a spawned binary writes to stderr, as they come (echoed with `[server]` when `TEST_LOG`
/// is set), read on a task of their own so the child never blocks on a full pipe.
pub fn stderr_lines(child: &mut tokio::process::Child) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, log) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("[server] {line}");
            }
            let _ = tx.send(line);
        }
    });
    log
}
