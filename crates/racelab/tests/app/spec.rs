//! `racelab spec` as a user runs it: isolationtester's own output byte for byte through the binary,
//! the text format in 80 columns, the JSON document, and the input it refuses.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use racelab_testkit::TestDb;
use serde_json::Value;

use crate::support::binary::{command, text};
use crate::support::scratch::ScratchDir;

const ISOLATIONTESTER: &str = "/usr/lib/postgresql/15/lib/pgxs/src/test/isolation/isolationtester";

fn spec_file(name: &str) -> String {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs").join(name);
    path.display().to_string()
}

fn racelab(args: &[&str]) -> Output {
    command().args(args).stdin(Stdio::null()).output().expect("the racelab binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_format_isolationtester_prints_what_isolationtester_prints() {
    assert!(Path::new(ISOLATIONTESTER).exists(), "{ISOLATIONTESTER} missing: apt-get install postgresql-server-dev-15");
    let file = spec_file("hermitage/lost-update.spec");
    let theirs = {
        let test = TestDb::create(racelab_core::Backend::Postgres).await;
        let input = std::fs::File::open(&file).unwrap();
        let output = std::process::Command::new(ISOLATIONTESTER).arg(&test.url).stdin(input).output().unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        output.stdout
    };
    let test = TestDb::create(racelab_core::Backend::Postgres).await;
    let output = racelab(&["spec", &file, "--database-url", &test.url, "--format", "isolationtester"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), text(&theirs));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_text_draws_sessions_in_columns_within_80_and_says_what_committed() {
    let test = TestDb::create(racelab_core::Backend::Postgres).await;
    let file = spec_file("hermitage/lost-update.spec");
    let output = racelab(&["spec", &file, "--database-url", &test.url]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}\n{stdout}", text(&output.stderr));
    for line in stdout.lines() {
        assert!(line.chars().count() <= 80, "{} columns: {line}\n{stdout}", line.chars().count());
    }
    assert!(stdout.contains("reader_rc                | writer                   | reader_rr"), "{stdout}");
    assert!(stdout.contains("                         |   ... waits\n"), "{stdout}");
    // READ COMMITTED: both commit, the counter says 11 after two increments (the lost update).
    assert!(stdout.contains("=> committed: reader_rc, writer; rolled back: none; failed: none"), "{stdout}");
    assert!(stdout.contains("                         |      1|11\n"), "{stdout}");
    // REPEATABLE READ: the second writer fails when the first commits.
    assert!(
        stdout.contains("=> committed: writer; rolled back: reader_rr; failed: rr_write (serialization_f…"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_json_has_every_permutation_step_answer_and_error_kind() {
    let test = TestDb::create(racelab_core::Backend::Postgres).await;
    let file = spec_file("hermitage/lost-update.spec");
    let output = racelab(&["spec", &file, "--database-url", &test.url, "--format", "json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let run = &json[0];
    assert_eq!(run["file"], file.as_str());
    assert!(run["database"].as_str().unwrap().starts_with("postgres://"));
    let permutations = run["run"]["permutations"].as_array().unwrap();
    assert_eq!(permutations.len(), 2);
    let events = permutations[1]["events"].as_array().unwrap();
    let waiting: Vec<&Value> = events.iter().filter(|e| e["event"] == "waiting").collect();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0]["step"], "rr_write");
    let failed = events.iter().find(|e| e["event"] == "done" && e["step"] == "rr_write").unwrap();
    assert_eq!(failed["waited"], true);
    assert_eq!(failed["answer"]["error"]["kind"], "serialization_failure");
    assert_eq!(failed["answer"]["error"]["code"], "40001");
    let check = events.iter().find(|e| e["step"] == "w_check").unwrap();
    assert_eq!(check["answer"]["tables"][0]["columns"], serde_json::json!(["id", "value"]));
    assert_eq!(check["answer"]["tables"][0]["rows"], serde_json::json!([["1", "11"]]));
    assert_eq!(run["stopped"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_refuses_bad_input_naming_what_and_where() {
    let scratch = ScratchDir::new("spec");
    let broken = scratch.join("broken.spec");
    std::fs::write(&broken, "session s1\nstep a { SELECT 1 }\npermutation a b\n").unwrap();
    let test = TestDb::create(racelab_core::Backend::Postgres).await;
    let output = racelab(&["spec", broken.to_str().unwrap(), "--database-url", &test.url]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:3:15: undefined step \"b\" specified in permutation", broken.display())),
        "{stderr}"
    );

    let file = spec_file("blocking.spec");
    let output = racelab(&["spec", &file, "--database-url", &test.url, "--permutation", "s1_begin nope"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--permutation for"), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("undefined step \"nope\""), "{}", text(&output.stderr));

    // Several URLs in one flag are one Galera cluster's nodes: MariaDB only.
    let two = format!("{},{}", test.url, test.url);
    let output = racelab(&["spec", &file, "--database-url", &two]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("nodes of one MariaDB Galera cluster"), "{}", text(&output.stderr));

    let missing = scratch.join("missing.spec");
    let output = racelab(&["spec", missing.to_str().unwrap(), "--database-url", &test.url]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("cannot read"), "{}", text(&output.stderr));
}

/// A setup that fails ends the command with status 1 and isolationtester's message on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_a_failing_setup_ends_the_command_with_isolationtesters_message() {
    let scratch = ScratchDir::new("spec");
    let file = scratch.join("failing.spec");
    std::fs::write(&file, "setup { SELECT * FROM no_such_table; }\nsession s1 step a { SELECT 1; }\n").unwrap();
    let test = TestDb::create(racelab_core::Backend::Postgres).await;
    let output = racelab(&["spec", file.to_str().unwrap(), "--database-url", &test.url, "--format", "isolationtester"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), "Parsed test spec with 1 sessions\n\nstarting permutation: a\n");
    assert!(
        text(&output.stderr).contains("setup failed: ERROR:  relation \"no_such_table\" does not exist"),
        "{}",
        text(&output.stderr)
    );
}

/// Several --database-url: the spec runs on each and only the permutations whose outcome differs
/// are printed, naming the backends; the exit status says they differ. Hermitage's lost update at
/// REPEATABLE READ is the known difference: PostgreSQL fails the second writer (could not
/// serialize), MariaDB without innodb_snapshot_isolation lets it overwrite (docs/anomalies.md, P4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_on_postgres_and_mariadb_prints_only_the_permutations_that_differ() {
    let pg = TestDb::create(racelab_core::Backend::Postgres).await;
    let maria = TestDb::create(racelab_core::Backend::MySql).await;
    // Run from specs/, so the titles name the file the same wherever the repository is.
    let in_specs = |file: &str| {
        command()
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs"))
            .args(["spec", file, "--database-url", &pg.url, "--database-url", &maria.url])
            .stdin(Stdio::null())
            .output()
            .expect("the racelab binary runs")
    };
    let output = in_specs("hermitage/lost-update.spec");
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("the outcomes differ in 1 permutation"), "{}", text(&output.stderr));
    assert!(stdout.starts_with("hermitage/lost-update.spec: 1 of 2 permutations differ\n"), "{stdout}");
    assert!(
        stdout.contains("MariaDB: \"BEGIN ISOLATION LEVEL REPEATABLE READ\" runs as \"SET TRANSACTION"),
        "{stdout}"
    );
    assert!(!stdout.contains("permutation 1/2"), "the READ COMMITTED permutation is the same on both: {stdout}");
    assert!(stdout.contains("permutation 2/2: rr_begin"), "{stdout}");
    assert!(stdout.contains("step         | postgres                        | mysql\n"), "{stdout}");
    assert!(stdout.contains("rr_write     | waited, ERROR serialization_fa… | waited, ok\n"), "{stdout}");
    assert!(stdout.contains("mysql => committed: writer, reader_rr; rolled back: none; failed: none"), "{stdout}");
    for line in stdout.lines() {
        assert!(line.chars().count() <= 80, "{line}");
    }

    // Read skew: both prevent it at REPEATABLE READ and show it at READ COMMITTED: nothing differs.
    let output = in_specs("hermitage/read-skew.spec");
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.starts_with("hermitage/read-skew.spec: the same outcome on every database (2 permutations)\n"),
        "{stdout}"
    );
}

/// The comparison as JSON: each database's run, and the differences with every step's outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_comparison_json_has_each_run_and_the_differing_steps() {
    let pg = TestDb::create(racelab_core::Backend::Postgres).await;
    let sqlite = TestDb::create(racelab_core::Backend::Sqlite).await;
    let file = spec_file("hermitage/lost-update.spec");
    let output =
        racelab(&["spec", &file, "--database-url", &pg.url, "--database-url", &sqlite.url, "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let file_run = &json[0];
    assert_eq!(file_run["runs"].as_array().unwrap().len(), 2);
    assert_eq!(
        file_run["runs"][1]["translations"][0],
        "SQLite: \"BEGIN ISOLATION LEVEL READ COMMITTED\" runs as \"BEGIN\""
    );
    let differences = file_run["differences"].as_array().unwrap();
    // READ COMMITTED: PostgreSQL's second writer waits and overwrites; SQLite's waits (refused busy)
    // and fails once the first commits, its snapshot stale.
    let w_write = differences[0]["outcomes"][1].as_array().unwrap().iter().find(|o| o["step"] == "w_write").unwrap();
    assert_eq!(w_write["waited"], true);
    assert_eq!(w_write["error"], "busy");
}
