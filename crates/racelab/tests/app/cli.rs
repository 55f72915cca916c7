//! The `racelab` binary as a user runs it: `lab` on every backend, the embedded default, and every
//! kind of bad input (a clear message, a non-zero exit, no password printed).

use std::process::Output;

use racelab_testkit::{TestDb, on_every_backend, on_server_backends};
use serde_json::Value;

use crate::support::binary::{command, text};
use crate::support::scratch::ScratchDir;
use racelab_testkit::limited_account;

fn racelab(args: &[&str], dir: &std::path::Path) -> Output {
    command().args(args).current_dir(dir).output().expect("the racelab binary runs")
}

async fn lab_json_accounts_for_every_strategy(test: TestDb) {
    let dir = ScratchDir::new("cli");
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

// `--slots` reaches the strategy: with one slot every increment of a post lands in the same slot row,
// with 64 they spread (counted in the SQLite file behind racelab's back).
#[tokio::test]
async fn lab_spreads_sharded_increments_over_the_slots_it_is_given() {
    use sqlx::Connection;
    let dir = ScratchDir::new("cli");
    for (slots, spread) in [("1", false), ("64", true)] {
        let output = racelab(&["lab", "-s", "sharded", "--slots", slots, "-w", "4", "-n", "25", "--json"], &dir);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
        let result = &report["results"][0];
        assert_eq!((result["strategy"].as_str(), result["lost"].as_i64()), (Some("sharded"), Some(0)), "{result}");
        let post = result["post"].as_i64().expect("post");
        let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.join("racelab.db").display()))
            .await
            .expect("open racelab.db");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM post_slots WHERE post = ?")
            .bind(post)
            .fetch_one(&mut db)
            .await
            .expect("count slots");
        assert_eq!(rows > 1, spread, "--slots {slots}: 100 increments in {rows} slot rows");
    }
}

#[test]
fn lab_defaults_to_an_embedded_sqlite_file_and_prints_a_table() {
    let dir = ScratchDir::new("cli");
    let output = racelab(&["lab", "-s", "naive,atomic", "--force-race"], &dir);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("sqlite://racelab.db"), "{stdout}");
    // The forced race makes naive lose at least one of its 50; atomic loses none. Each verdict is on
    // the line below its strategy's figures.
    let verdict = |name: &str| {
        let mut lines = stdout.lines().skip_while(|l| !l.starts_with(&format!("{name} ")));
        assert!(lines.next().is_some(), "a {name} row in:\n{stdout}");
        lines.next().unwrap_or_default().trim().to_owned()
    };
    let naive = verdict("naive");
    assert!(naive.contains(" of 50 updates") && naive.starts_with("lost "), "{naive}");
    assert!(!naive.contains("lost 0 of"), "{naive}");
    assert!(verdict("atomic").contains("no update lost"), "{stdout}");
    assert!(dir.join("racelab.db").exists(), "the default database file is created on demand");
}

/// The lab's output fits an 80-column terminal with every strategy name, header and verdict; `all`
/// on SQLite says why `advisory` did not run; `--wide` keeps one line per strategy.
#[test]
fn the_lab_table_fits_80_columns_and_names_what_did_not_run() {
    let dir = ScratchDir::new("cli");
    let names = "naive,atomic,pessimistic-skip-locked,versioned-no-retry";
    let output = racelab(&["lab", "-s", names, "--force-race"], &dir);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    for line in stdout.lines() {
        assert!(line.chars().count() <= 80, "{} columns: {line}\n{stdout}", line.chars().count());
    }
    assert!(stdout.starts_with("racelab lab on sqlite://racelab.db (SQLite 3."), "{stdout}");
    for name in names.split(',') {
        assert!(stdout.lines().any(|l| l.starts_with(&format!("{name} "))), "{name} unsplit in:\n{stdout}");
    }

    let output = racelab(&["lab", "-s", "all", "-w", "1", "-n", "1"], &dir);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("note: the advisory strategy was not run"), "{stdout}");
    assert!(stdout.contains("SQLite") || stdout.contains("sqlite, which has no application locks"), "{stdout}");

    let output = racelab(&["lab", "-s", "naive", "-w", "1", "-n", "1", "--wide"], &dir);
    let stdout = text(&output.stdout);
    let row = stdout.lines().find(|l| l.contains("naive")).expect("a naive row");
    assert!(row.contains("no update lost"), "the verdict on the strategy's own line in --wide:\n{stdout}");
}

/// `racelab lab | head -1`: a reader that goes away is no reason to panic. The pipe is closed before
/// the lab writes its first line, so every write it makes meets a closed pipe.
#[test]
fn a_closed_stdout_ends_the_lab_quietly() {
    let dir = ScratchDir::new("cli");
    for extra in [&[][..], &["--json"][..]] {
        let mut child = command()
            .args(["lab", "-s", "atomic", "-w", "1", "-n", "1"])
            .args(extra)
            .current_dir(&*dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the racelab binary runs");
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("racelab ends");
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{extra:?}: {stderr}");
    }
}

/// Logs written to a file (not a terminal) carry no ANSI colour codes.
#[test]
fn logs_off_a_terminal_have_no_colour_codes() {
    let dir = ScratchDir::new("cli");
    let output = racelab(&["lab", "-s", "atomic", "-w", "1", "-n", "2", "--log", "debug"], &dir);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("DEBUG"), "debug lines expected: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escape in: {stderr:?}");
}

/// A `.env` line dotenvy cannot parse (an unquoted value with spaces) is an error naming the file and
/// the line, not a silent stop that leaves the lines after it unread. Its value is not shown.
#[test]
fn an_unparsable_env_file_is_an_error_naming_the_line() {
    let dir = ScratchDir::new("cli");
    std::fs::write(
        dir.join(".env"),
        "# racelab\nRACELAB_LOCK_TIMEOUT=2s\nRACELAB_INIT_SQL=SET SESSION x = S3cret y\nDATABASE_URL=mysql://root@127.0.0.1/test\n",
    )
    .unwrap();
    let output = racelab(&["lab", "-s", "atomic"], &dir);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let path = dir.join(".env");
    assert!(stderr.contains(&format!("{} line 3 (RACELAB_INIT_SQL=...)", path.display())), "{stderr}");
    assert!(stderr.contains("quote"), "{stderr}");
    assert!(!stderr.contains("S3cret"), "{stderr}");
    assert!(!dir.join("racelab.db").exists(), "the lab must not fall back to SQLite");

    // The line named is the one that fails, not an earlier one that ends with the same text (a comment
    // quoting it, a valid line with a trailing comment), nor a quoted value spanning lines.
    std::fs::write(
        dir.join(".env"),
        "# example: X=a b\nY=1 # a b\nZ=\"two\nlines\"\nA=1\nX=a b\nDATABASE_URL=mysql://root@127.0.0.1/test\n",
    )
    .unwrap();
    let stderr = text(&racelab(&["lab", "-s", "atomic"], &dir).stderr);
    assert!(stderr.contains(&format!("{} line 6 (X=...)", path.display())), "{stderr}");

    std::fs::write(dir.join(".env"), "RACELAB_INIT_SQL=\"SELECT 1\"\n").unwrap();
    let output = racelab(&["lab", "-s", "atomic", "-w", "1", "-n", "1"], &dir);
    assert!(output.status.success(), "a quoted value is fine: {}", text(&output.stderr));
}

/// A duration without a unit is refused with a suggestion, not taken as seconds.
#[test]
fn a_duration_needs_a_unit() {
    let dir = ScratchDir::new("cli");
    let output = racelab(&["lab", "--lock-timeout", "5"], &dir);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`5` has no unit: write 5s or 5ms"), "{stderr}");
}

/// Bad input: exit code 2 (usage) or 1 (runtime), a message naming the problem, no password.
#[test]
fn bad_input_gets_a_clear_message_and_a_non_zero_exit() {
    let dir = ScratchDir::new("cli");
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
        // A URL typed without --database-url is an argument clap did not expect, and repeats.
        (&["lab", "postgres://scott:tiger@127.0.0.1:5432/x"], 2, "unexpected argument 'postgres://scott:***@"),
        (&["migrate", "--database-url", "sqlite://x.db", "u:tiger@h"], 2, "unexpected argument '***@h'"),
        (&["serve", "--like-strategy", "naive"], 2, "--like-strategy: `naive` loses updates, so it cannot make likes"),
        (&["serve", "--like-strategy", "fastest"], 2, "unknown strategy `fastest`"),
    ];
    for (args, code, needle) in cases {
        let output = racelab(args, &dir);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(*code), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: expected `{needle}` in: {stderr}");
        assert!(!stderr.contains("tiger") && !text(&output.stdout).contains("tiger"), "{args:?} leaked: {stderr}");
    }
}

/// The malformed database URLs of issue 8: whatever the form, the password is never printed, by `lab`
/// or by `serve`, on stdout or stderr (with every log line on), and the command ends with an error.
#[tokio::test]
async fn a_malformed_database_url_never_prints_its_password() {
    let dir = ScratchDir::new("cli");
    let forms = [
        "postgres:/u:S3cretPW@127.0.0.1:1/x",
        "postgres:u:S3cretPW@127.0.0.1:1/x",
        "u:S3cretPW@127.0.0.1:1/x",
        "postgres//u:S3cretPW@127.0.0.1:1/x",
        "mysql:/u:S3cretPW@127.0.0.1:1/x",
        "postgres://u:S3cretPW/x",
        "postgres:u:S3cretPW",
        "postgres:/u:S3cretPW",
    ];
    for url in forms {
        for subcommand in [&["lab", "-s", "atomic"][..], &["serve", "--bind", "127.0.0.1:0"][..]] {
            let mut args = subcommand.to_vec();
            args.extend(["--database-url", url, "--log", "trace"]);
            let output = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                tokio::process::Command::from(command()).args(&args).current_dir(&*dir).kill_on_drop(true).output(),
            )
            .await
            .unwrap_or_else(|_| panic!("{args:?} did not end"))
            .expect("the racelab binary runs");
            let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
            assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains("database URL"), "{args:?}: {stderr}");
            assert!(!stdout.contains("S3cret") && !stderr.contains("S3cret"), "{args:?} leaked:\n{stdout}\n{stderr}");
        }
    }
}

/// A URL that works, with password-looking parameters the driver does not read as the password
/// (`PASSWORD=`, `sslpassword=`), reads after decoding (`pass%77ord=`), or a bare value after the `?`:
/// no command prints them, with every log line on.
async fn secret_parameters_are_never_printed(test: TestDb) {
    let dir = ScratchDir::new("cli");
    let separator = if test.url.contains('?') { '&' } else { '?' };
    // The anomaly suite opens raw connections of its own (on PostgreSQL only, where the driver's
    // warning printed the value; on MariaDB it takes long and the driver says nothing).
    let mut commands = vec![&["lab", "-s", "atomic", "-w", "1", "-n", "1"][..], &["migrate"][..]];
    if test.backend == racelab_core::Backend::Postgres {
        commands.push(&["anomalies"][..]);
    }
    for parameter in ["PASSWORD=S3cretPW", "sslpassword=S3cretPW", "pass%77ord=S3cretPW", "S3cretPW"] {
        let url = format!("{}{separator}{parameter}", test.url);
        for command in &commands {
            let mut args = command.to_vec();
            args.extend(["--database-url", &url, "--log", "debug"]);
            let output = racelab(&args, &dir);
            let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
            assert!(!stdout.contains("S3cret") && !stderr.contains("S3cret"), "{args:?} leaked:\n{stdout}\n{stderr}");
        }
    }
}

on_server_backends!(secret_parameters_are_never_printed);

/// `racelab lab` with `args` on a thread of its own (the binary blocks), and how long it took.
async fn lab_timed(args: Vec<String>) -> (Output, std::time::Duration) {
    tokio::task::spawn_blocking(move || {
        let dir = ScratchDir::new("cli");
        let started = std::time::Instant::now();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = racelab(&args, &dir);
        (output, started.elapsed())
    })
    .await
    .unwrap()
}

/// The same URL naming another database.
fn other_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a database in the URL");
    format!("{base}/{name}")
}

/// Connection failures say what is true: access denied, no such database (with the command that
/// creates it), a bad init statement (once, with its text and the server's message, at once), each
/// with its own hint, never "check that the server runs" (that is for a server that did not answer),
/// and without the driver's decorations ("error returned from database", PostgreSQL's "at line N").
async fn connection_failures_say_what_is_true(test: TestDb) {
    let denied = match test.backend {
        racelab_core::Backend::Postgres => test.url.replacen("postgres@", "racelab_nobody@", 1),
        _ => test.url.replacen("root@", "root:wrong@", 1),
    };
    let missing = format!("racelab_missing_{}", uuid::Uuid::new_v4().simple());
    // Commands that also succeed when the database exists by the time they run (see
    // `the_create_database_hint_works_twice`).
    let create = match test.backend {
        racelab_core::Backend::Postgres => format!(
            "hint: create it: psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -tAc \"SELECT 1 FROM pg_database \
             WHERE datname = '{missing}'\" | grep -q 1 || createdb -h 127.0.0.1 -p 5432 -U postgres {missing}"
        ),
        _ => format!("hint: create it: mysql -h127.0.0.1 -P3306 -uroot -e 'CREATE DATABASE IF NOT EXISTS {missing}'"),
    };
    let bad_sql = "SET racelab_no_such_setting = 1";
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            vec!["--database-url".into(), denied],
            vec!["refused the connection".into(), "hint: check the user name and password".into()],
        ),
        (
            vec!["--database-url".into(), other_database(&test.url, &missing)],
            vec!["refused the connection".into(), missing.clone(), create],
        ),
        (
            vec!["--database-url".into(), test.url.clone(), "--init-sql".into(), bad_sql.into()],
            vec![
                format!("error: the init statement `{bad_sql}` failed on "),
                "hint: fix or remove that --init-sql statement".into(),
            ],
        ),
    ];
    // Every command that connects says it alike (anomalies takes no --init-sql: it refuses it as usage).
    let commands: [&[&str]; 4] = [
        &["lab", "-s", "atomic", "-w", "1", "-n", "1"],
        &["bench", "-s", "atomic", "-w", "1", "--duration", "100ms"],
        &["migrate"],
        &["anomalies"],
    ];
    for (args, expected) in cases {
        for command in commands {
            if command[0] == "anomalies" && args.iter().any(|a| a == "--init-sql") {
                continue;
            }
            let mut all: Vec<String> = command.iter().map(|a| a.to_string()).collect();
            all.extend(args.clone());
            let (output, elapsed) = lab_timed(all.clone()).await;
            let stderr = text(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{all:?}: {stderr}");
            for needle in &expected {
                assert!(stderr.contains(needle.as_str()), "{all:?}: expected `{needle}` in:\n{stderr}");
            }
            for noise in ["check that the server runs", "pool timed out", "error returned from database", " at line "] {
                assert!(!stderr.contains(noise), "{all:?}: `{noise}` in:\n{stderr}");
            }
            assert_eq!(stderr.lines().filter(|l| !l.trim().is_empty()).count(), 2, "one error, one hint:\n{stderr}");
            assert!(elapsed < std::time::Duration::from_secs(5), "{all:?} took {elapsed:?}");
        }
    }
}

on_server_backends!(connection_failures_say_what_is_true);

/// An account that may hold 2 connections runs a 4-worker lab: the error names the server's refusal
/// (PostgreSQL 53300 "too many connections for role", MariaDB 1226 "max_user_connections") well
/// before the pool's 10 s acquire timeout, instead of "pool timed out".
async fn out_of_connections_is_named_as_such(test: TestDb) {
    let account = limited_account::LimitedAccount::create(&test, 2).await;
    let args = ["lab", "-s", "atomic", "-w", "4", "-n", "1", "--database-url", &account.url].map(String::from).to_vec();
    let (output, elapsed) = lab_timed(args).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let expected = match test.backend {
        racelab_core::Backend::Postgres => "too many connections for role",
        _ => "max_user_connections",
    };
    assert!(stderr.contains("the server refused a new connection") || stderr.contains(expected), "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    // PostgreSQL's 53300 is named as the limit it is, whatever the server's words ("sorry, too many
    // clients already" names none); MariaDB's 1226 names `max_user_connections` itself.
    if test.backend == racelab_core::Backend::Postgres {
        assert!(stderr.contains("max_connections (or the user's connection limit) is reached"), "{stderr}");
    }
    for noise in ["pool timed out", " at line ", "error returned from database"] {
        assert!(!stderr.contains(noise), "`{noise}` in: {stderr}");
    }
    assert!(elapsed < std::time::Duration::from_secs(8), "took {elapsed:?}: {stderr}");
}

on_server_backends!(out_of_connections_is_named_as_such);

/// An account allowed one connection, which the test holds: the lab's first connection is refused,
/// and the error says so with the hint about connection limits, not "check that the server runs".
async fn no_connection_left_at_connect_is_named_with_its_hint(test: TestDb) {
    use sqlx::Connection;
    let account = limited_account::LimitedAccount::create(&test, 1).await;
    let held: Box<dyn std::any::Any> = match test.backend {
        racelab_core::Backend::Postgres => Box::new(sqlx::PgConnection::connect(&account.url).await.unwrap()),
        _ => Box::new(sqlx::MySqlConnection::connect(&account.url).await.unwrap()),
    };
    let args = ["lab", "-s", "atomic", "-w", "1", "-n", "1", "--database-url", &account.url].map(String::from).to_vec();
    let (output, elapsed) = lab_timed(args).await;
    drop(held);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let code = match test.backend {
        racelab_core::Backend::Postgres => "(SQLSTATE 53300)",
        _ => "(error 1226)",
    };
    assert!(stderr.contains("refused the connection: ") && stderr.contains(code), "{stderr}");
    assert!(
        stderr.contains("hint: the server's max_connections (or the user's connection limit) is reached"),
        "{stderr}"
    );
    assert!(!stderr.contains("check that the server runs"), "{stderr}");
    assert!(elapsed < std::time::Duration::from_secs(5), "took {elapsed:?}");
}

on_server_backends!(no_connection_left_at_connect_is_named_with_its_hint);

/// `racelab migrate` on a SQLite file that cannot be used: the error names the file and what is wrong
/// with it, and the hint says what to do about that, never "check that the directory is writable"
/// for a file that opened. A full disk is made deterministic with `max_page_count`, which SQLite
/// enforces with the very code a full disk has (SQLITE_FULL, 13); it is reported at once, not retried
/// as if another process were migrating the file.
#[test]
fn an_unusable_sqlite_file_is_named_for_what_it_is() {
    let dir = ScratchDir::new("cli");
    // A file of random bytes, and a SQLite database whose schema page is overwritten.
    std::fs::write(
        dir.join("random.db"),
        (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<u8>>(),
    )
    .unwrap();
    let made = racelab(&["migrate", "--database-url", "sqlite://damaged.db"], &dir);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let mut damaged = std::fs::read(dir.join("damaged.db")).unwrap();
    damaged[4096..8192].fill(0xff);
    std::fs::write(dir.join("damaged.db"), damaged).unwrap();
    let cases: &[(&[&str], &str, &str, &str)] = &[
        (
            &["--database-url", "sqlite://random.db"],
            "random.db: the file is not a usable SQLite database",
            "(SQLite code 26)",
            "random.db is not a SQLite database racelab can use: move it aside",
        ),
        (
            &["--database-url", "sqlite://damaged.db"],
            "damaged.db: the file is not a usable SQLite database",
            "(SQLite code 11)",
            "damaged.db is not a SQLite database racelab can use: move it aside",
        ),
        (
            &["--database-url", "sqlite://full.db", "--init-sql", "PRAGMA max_page_count = 2"],
            "full.db: the disk is full",
            "(SQLite code 13)",
            "hint: free space on the disk that holds ",
        ),
    ];
    for (args, problem, code, hint) in cases {
        let mut all = vec!["migrate"];
        all.extend_from_slice(args);
        let output = racelab(&all, &dir);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("cannot use the SQLite database {}/", dir.display())), "{args:?}: {stderr}");
        assert!(stderr.contains(problem) && stderr.contains(code), "{args:?}: {stderr}");
        assert!(stderr.contains(hint), "{args:?}: {stderr}");
        assert!(!stderr.contains("writable, or set") && !stderr.contains("migration"), "{args:?}: {stderr}");
    }

    // A file opened read-only (`mode=ro`, as a read-only file system would) that needs its migrations.
    let fresh = dir.join("fresh-ro.db");
    std::fs::write(&fresh, b"").unwrap();
    let url = format!("sqlite://{}?mode=ro", fresh.display());
    let output = racelab(&["migrate", "--database-url", &url], &dir);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fresh-ro.db: it may only be read here") && stderr.contains("(SQLite code 8)"), "{stderr}");
    assert!(
        stderr.contains("hint: ") && stderr.contains("fresh-ro.db may only be read here: make the file"),
        "{stderr}"
    );
}

/// The command a "no such database" hint gives, run twice through the shell as a user would paste it:
/// it creates the database, and the second run succeeds too (`createdb` alone, or `CREATE DATABASE`
/// without `IF NOT EXISTS`, would fail because it exists). Needs the servers' client programs
/// (`psql`, `createdb`, `mysql`), as the README's examples do.
async fn the_create_database_hint_works_twice(test: TestDb) {
    let missing = format!("racelab_missing_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let url = other_database(&test.url, &missing);
    let (output, _) = lab_timed(["migrate", "--database-url", &url].map(String::from).to_vec()).await;
    let stderr = text(&output.stderr);
    let command = stderr
        .lines()
        .find_map(|line| line.trim().strip_prefix("hint: create it: "))
        .unwrap_or_else(|| panic!("no command in:\n{stderr}"))
        .to_owned();
    for run in 1..=2 {
        let shell = std::process::Command::new("sh").arg("-c").arg(&command).output().expect("sh runs");
        assert!(shell.status.success(), "run {run} of `{command}`: {}", text(&shell.stderr));
    }
    let (output, _) = lab_timed(["migrate", "--database-url", &url].map(String::from).to_vec()).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let drop = match test.backend {
        racelab_core::Backend::Postgres => format!("dropdb -h 127.0.0.1 -p 5432 -U postgres {missing}"),
        _ => format!("mysql -h127.0.0.1 -P3306 -uroot -e 'DROP DATABASE {missing}'"),
    };
    let dropped = std::process::Command::new("sh").arg("-c").arg(&drop).output().expect("sh runs");
    assert!(dropped.status.success(), "{}", text(&dropped.stderr));
}

on_server_backends!(the_create_database_hint_works_twice);

/// A PostgreSQL URL on MariaDB's port, and a MariaDB URL on PostgreSQL's: the error says the server
/// there speaks the other protocol, with a hint about the port and the scheme, at once (not the
/// driver's "unexpected message: CopyData", nor a 10 s wait for a greeting PostgreSQL never sends).
#[tokio::test]
async fn a_url_on_the_other_databases_port_is_named_as_such() {
    let cases = [
        ("postgres://postgres@127.0.0.1:3306/test", "the MariaDB/MySQL protocol, not PostgreSQL's", "mysql://"),
        ("mysql://root@127.0.0.1:5432/test", "the PostgreSQL protocol, not MariaDB/MySQL's", "postgres://"),
    ];
    for (url, protocol, scheme) in cases {
        for command in [&["migrate"][..], &["lab", "-s", "atomic", "-w", "1", "-n", "1"][..]] {
            let mut args: Vec<String> = command.iter().map(|a| a.to_string()).collect();
            args.extend(["--database-url".to_owned(), url.to_owned()]);
            let (output, elapsed) = lab_timed(args.clone()).await;
            let stderr = text(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains(&format!("{url}: the server there speaks {protocol}")), "{args:?}: {stderr}");
            assert!(stderr.contains("hint: point the URL at a ") && stderr.contains(scheme), "{args:?}: {stderr}");
            for noise in ["CopyData", "no answer within", "check that the server runs"] {
                assert!(!stderr.contains(noise), "{args:?}: `{noise}` in:\n{stderr}");
            }
            assert!(elapsed < std::time::Duration::from_secs(5), "{args:?} took {elapsed:?}");
        }
    }
}

/// A URL without `//` after its scheme: the error shows what was typed in its place and the rest of
/// the URL, only the password hidden, and says where `://` belongs.
#[test]
fn a_url_without_its_double_slash_shows_what_could_not_be_read() {
    let dir = ScratchDir::new("cli");
    for (url, shown) in [
        (
            "postgres:/u:S3cretPW@127.0.0.1/x",
            "`postgres:/u:***@127.0.0.1/x` has `postgres:/` where `postgres://` belongs",
        ),
        (
            "mysql//root:S3cretPW@127.0.0.1/test",
            "`mysql//root:***@127.0.0.1/test` has `mysql//` where `mysql://` belongs",
        ),
    ] {
        let output = racelab(&["migrate", "--database-url", url], &dir);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{url}: {stderr}");
        assert!(stderr.contains(shown), "{url}: {stderr}");
        assert!(!stderr.contains("S3cret"), "{url}: {stderr}");
    }
}
