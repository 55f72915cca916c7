//! The `racelab` binary as a user runs it: `lab` on every backend, the embedded default, and every
//! kind of bad input (a clear message, a non-zero exit, no password printed).

use std::process::{Command, Output};

use racelab_testkit::{TestDb, on_every_backend};
use serde_json::Value;

fn racelab(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_racelab"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .expect("the racelab binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A working directory of the test's own, removed when dropped (also when the test fails).
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("racelab-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn lab_json_accounts_for_every_strategy(test: TestDb) {
    let dir = ScratchDir::new();
    let url = test.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        racelab(&["lab", "--database-url", &url, "-w", "4", "-n", "10", "--force-race", "--json"], &dir)
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(report["workers"], 4);
    assert_eq!(report["increments"], 10);
    assert_eq!(report["database"]["backend"], test.backend.as_str());
    let results = report["results"].as_array().unwrap();
    let names: Vec<&str> = results.iter().map(|r| r["strategy"].as_str().unwrap()).collect();
    assert!(names.starts_with(&["naive", "atomic", "pessimistic", "optimistic", "versioned"]), "{names:?}");
    for result in results {
        for key in ["expected", "acknowledged", "failed", "errors", "actual", "lost", "attempts", "retries"] {
            assert!(result.get(key).is_some(), "{key} missing in {result}");
        }
        for key in ["p50", "p95", "p99", "max"] {
            assert!(result["latency_ms"][key].is_number(), "{result}");
        }
        let n = |k: &str| result[k].as_i64().unwrap();
        assert_eq!(n("acknowledged") + n("failed"), n("expected"), "{result}");
        match result["strategy"].as_str().unwrap() {
            // Four workers all read 0 first: at least three increments are overwritten.
            "naive" => assert!(n("lost") >= 3, "{result}"),
            "versioned-no-retry" => assert!(n("dropped") >= 3 && n("lost") == 0, "{result}"),
            _ => assert_eq!((n("lost"), n("actual")), (0, 40), "{result}"),
        }
    }
}

on_every_backend!(lab_json_accounts_for_every_strategy);

#[test]
fn lab_defaults_to_an_embedded_sqlite_file_and_prints_a_table() {
    let dir = ScratchDir::new();
    let output = racelab(&["lab", "-s", "naive,atomic", "--force-race"], &dir);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("sqlite://racelab.db"), "{stdout}");
    // The forced race makes naive lose at least one of its 50; atomic loses none.
    let naive = stdout.lines().find(|l| l.contains("naive")).expect("a naive row");
    assert!(naive.contains(" of 50 updates") && naive.contains("lost "), "{naive}");
    assert!(!naive.contains("lost 0 of"), "{naive}");
    let atomic = stdout.lines().find(|l| l.contains("atomic")).expect("an atomic row");
    assert!(atomic.contains("no update lost"), "{atomic}");
    assert!(dir.join("racelab.db").exists(), "the default database file is created on demand");
}

/// Bad input: exit code 2 (usage) or 1 (runtime), a message naming the problem, no password.
#[test]
fn bad_input_gets_a_clear_message_and_a_non_zero_exit() {
    let dir = ScratchDir::new();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["lab", "-s", "optimstic"], 2, "unknown strategy `optimstic`; expected one of: naive, atomic"),
        (&["lab", "-w", "0"], 2, "--workers must be between 1 and 256, got 0"),
        (&["lab", "-w", "100000"], 2, "--workers must be between 1 and 256, got 100000"),
        (&["lab", "-n", "0"], 2, "--increments must be between 1 and 1000000, got 0"),
        (&["lab", "-w", "many"], 2, "invalid value 'many'"),
        (&["lab", "--lock-mode", "forever"], 2, "unknown lock mode `forever`"),
        (&["lab", "-s", "advisory"], 2, "not supported on sqlite"),
        (&["lab", "--max-attempts", "0"], 2, "max_attempts must be between 1"),
        (&["lab", "--database-url", "oracle://scott:tiger@db/x"], 2, "unsupported scheme `oracle`"),
        (&["lab", "--database-url", "postgres://scott:tiger@[::1/x"], 2, "malformed"),
        (&["lab", "--database-url", "postgres://scott:ti/ger@127.0.0.1:5432/x"], 2, "postgres://scott:***@"),
        (
            &["lab", "--database-url", "postgres://scott:tiger@127.0.0.1:1/x"],
            1,
            "cannot connect to postgres://scott:***@127.0.0.1:1/x",
        ),
        (&["lab", "--database-url", "mysql://scott:tiger@127.0.0.1:1/x"], 1, "hint: check that the server runs"),
    ];
    for (args, code, needle) in cases {
        let output = racelab(args, &dir);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(*code), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: expected `{needle}` in: {stderr}");
        assert!(!stderr.contains("tiger") && !text(&output.stdout).contains("tiger"), "{args:?} leaked: {stderr}");
    }
}
