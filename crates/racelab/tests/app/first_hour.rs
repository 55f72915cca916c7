//! A newcomer's first hour with the `racelab` binary and the page: help that fits the terminal and
//! shows first what a user reaches for, hints that name the way out (a port in use, a strategy
//! misspelt), where the lab's data lives (the SQLite file, the `.env` read), what `lab --json` left out,
//! and fresh rows that never take the `/test-db` endpoints' default post.
//!
//! ```sh
//! cargo nextest run -p racelab --test app first_hour::
//! ```

use std::path::Path;
use std::process::Output;

use racelab_testkit::TestDb;
use serde_json::{Value, json};

use crate::support::binary::{command, text};
use crate::support::scratch::ScratchDir;
use crate::support::service::spawn_app;

fn racelab_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command().args(args).envs(env.iter().copied()).current_dir(dir).output().expect("the racelab binary runs")
}

fn lines_longer_than(text: &str, width: usize) -> Vec<&str> {
    text.lines().filter(|line| line.chars().count() > width).collect()
}

/// The position of the first line containing `needle`.
fn line_of(help: &str, needle: &str) -> usize {
    help.lines().position(|line| line.contains(needle)).unwrap_or_else(|| panic!("no `{needle}` in:\n{help}"))
}

// `--help` is wrapped to the terminal (here $COLUMNS, as on a terminal clap asks it), `-h` is the
// short form (a line or two per flag, tuning flags left to `--help`), and a subcommand's own flags
// come before the database, tuning and logging ones.
#[test]
fn help_wraps_to_the_terminal_h_is_short_and_a_commands_own_flags_come_first() {
    let dir = ScratchDir::new("first-hour");
    for subcommand in ["serve", "lab", "bench", "anomalies", "migrate"] {
        let long = racelab_in(&dir, &[subcommand, "--help"], &[("COLUMNS", "80")]);
        assert!(long.status.success(), "{}", text(&long.stderr));
        let long = text(&long.stdout);
        assert_eq!(lines_longer_than(&long, 80), Vec::<&str>::new(), "{subcommand} --help:\n{long}");

        let short = racelab_in(&dir, &[subcommand, "-h"], &[("COLUMNS", "80")]);
        let short = text(&short.stdout);
        assert_eq!(lines_longer_than(&short, 80), Vec::<&str>::new(), "{subcommand} -h:\n{short}");
        // Before: -h was --help, 49 to 63 lines at 100 columns.
        assert!(short.lines().count() * 2 < long.lines().count(), "{subcommand}: -h is not short:\n{short}");
        assert!(short.lines().count() <= 45, "{subcommand} -h has {} lines:\n{short}", short.lines().count());
        assert!(short.contains("see more with '--help'"), "{short}");
        // Tuning is for --help.
        assert!(!short.contains("--backoff-base"), "{subcommand} -h:\n{short}");
        assert!(long.contains("--backoff-base") || subcommand == "anomalies" || subcommand == "migrate", "{long}");
    }

    for (subcommand, own) in [
        ("lab", ["-s, --strategy", "-w, --workers", "-n, --increments"]),
        ("bench", ["-s, --strategy", "-w, --workers", "-d, --duration"]),
    ] {
        let help = text(&racelab_in(&dir, &[subcommand, "--help"], &[("COLUMNS", "100")]).stdout);
        let options = line_of(&help, "Options:");
        assert_eq!(line_of(&help, own[0]), options + 1, "{subcommand}: the first option is not -s:\n{help}");
        for flag in own {
            assert!(line_of(&help, flag) < line_of(&help, "--database-url"), "{subcommand}: {flag} after:\n{help}");
            assert!(line_of(&help, flag) < line_of(&help, "--max-attempts"), "{subcommand}: {flag} after:\n{help}");
        }
        assert!(line_of(&help, "Database:") < line_of(&help, "Tuning:"), "{help}");
    }
    let serve = text(&racelab_in(&dir, &["serve", "--help"], &[("COLUMNS", "100")]).stdout);
    assert_eq!(line_of(&serve, "--bind"), line_of(&serve, "Options:") + 1, "{serve}");
}

// A misspelt strategy is answered with the nearest name and the whole list, `all` included.
#[test]
fn an_unknown_strategy_suggests_the_nearest_name_and_lists_all() {
    let dir = ScratchDir::new("first-hour");
    for subcommand in ["lab", "bench"] {
        let output = racelab_in(&dir, &[subcommand, "-s", "atomic,optimistc"], &[]);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
        let stderr = text(&output.stderr);
        assert!(stderr.contains("unknown strategy `optimistc`; expected one of: naive, atomic,"), "{stderr}");
        assert!(stderr.contains(", sharded, or all; did you mean `optimistic`?"), "{stderr}");
        // Nothing was run: the typo costs nothing.
        assert!(!dir.join("racelab.db").exists());
    }
}

// `lab` says where its data is: the SQLite file's absolute path, and which `.env` gave which setting.
#[test]
fn lab_names_the_sqlite_files_absolute_path_and_the_dotenv_it_read() {
    let dir = ScratchDir::new("first-hour");
    std::fs::write(dir.join(".env"), "DATABASE_URL=sqlite://from-dotenv.db\nRACELAB_LOCK_TIMEOUT=4s\n").unwrap();
    let output = racelab_in(&dir, &["lab", "-s", "atomic", "-w", "1", "-n", "1"], &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let file = dir.canonicalize().unwrap().join("from-dotenv.db");
    assert!(file.exists(), "the .env's database was not used:\n{stdout}");
    assert!(stdout.contains(&format!("the SQLite file {}", file.display())), "{stdout}");
    assert!(stdout.contains("\n1 worker x 1 increment per strategy\n"), "{stdout}");
    let dotenv = dir.canonicalize().unwrap().join(".env");
    assert!(
        stdout.contains(&format!("settings from {}: DATABASE_URL, RACELAB_LOCK_TIMEOUT", dotenv.display())),
        "{stdout}"
    );

    // A setting the environment gives wins, and is not said to come from the file.
    let output = racelab_in(&dir, &["lab", "-s", "atomic", "-w", "1", "-n", "1"], &[("RACELAB_LOCK_TIMEOUT", "3s")]);
    let stdout = text(&output.stdout);
    assert!(stdout.contains(&format!("settings from {}: DATABASE_URL\n", dotenv.display())), "{stdout}");

    let json = racelab_in(&dir, &["lab", "-s", "atomic", "-w", "1", "-n", "1", "--json"], &[]);
    let report: Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    assert_eq!(report["database"]["file"], json!(file.display().to_string()), "{report}");
}

// `lab --json` names what `all` left out and why, as the table's notes do.
#[test]
fn lab_json_names_the_strategies_it_did_not_run_and_why() {
    let dir = ScratchDir::new("first-hour");
    let output = racelab_in(&dir, &["lab", "-w", "1", "-n", "1", "--json"], &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let not_run = report["not_run"].as_array().unwrap_or_else(|| panic!("no not_run in {report}"));
    assert_eq!(not_run.len(), 1, "{report}");
    assert_eq!(not_run[0]["strategy"], "advisory");
    let reason = not_run[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("it is not supported on sqlite, which has no application locks"), "{reason}");

    let table = text(&racelab_in(&dir, &["lab", "-w", "1", "-n", "1"], &[]).stdout);
    assert!(table.contains("note: the advisory strategy was not run: it is not supported on sqlite"), "{table}");

    // A list without `all` leaves nothing out.
    let output = racelab_in(&dir, &["lab", "-s", "atomic", "-w", "1", "-n", "1", "--json"], &[]);
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(report["not_run"], json!([]));
}

// On an empty table the first fresh row would be pk 1, the post /test-db/check shows by default: the
// lab's counts would pass for the endpoints' own. Post 1 is left to them (created at like = 0).
#[tokio::test]
async fn the_labs_fresh_rows_never_take_the_default_post() {
    use sqlx::Connection;
    let dir = ScratchDir::new("first-hour");
    let output = racelab_in(&dir, &["lab", "-s", "naive,atomic", "-w", "2", "-n", "5", "--json"], &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    for result in report["results"].as_array().unwrap() {
        assert_ne!(result["post"], 1, "{result}");
    }
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.join("racelab.db").display()))
        .await
        .expect("open racelab.db");
    let like: i64 = sqlx::query_scalar("SELECT \"like\" FROM posts WHERE pk = 1").fetch_one(&mut db).await.unwrap();
    assert_eq!(like, 0);
}

// The same for a run of the page (`POST /experiments` without `post`), on a fresh database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runs_fresh_rows_never_take_the_default_post() {
    racelab_testkit::run(racelab_core::Backend::Sqlite, |test: TestDb| async move {
        let app = spawn_app(&test).await;
        let body = json!({"kind": "lab", "strategies": ["atomic"], "workers": 1, "increments": 1});
        let answer = app.client.post(format!("{}/experiments", app.address)).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 202);
        let path = answer.headers()["location"].to_str().unwrap().to_owned();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let run = loop {
            let run = app.ok(&path).await;
            if run["state"] != "queued" && run["state"] != "running" {
                break run;
            }
            assert!(std::time::Instant::now() < deadline, "{run}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(run["state"], "finished", "{run}");
        assert_ne!(run["results"][0]["post"], 1, "{run}");
        assert_eq!(app.ok("/test-db/check").await["like"], 0);
    })
    .await;
}

// A port in use: the way out is named (another address, the variable, port 0).
#[test]
fn serve_on_a_port_in_use_names_bind_and_port_0() {
    let dir = ScratchDir::new("first-hour");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = racelab_in(&dir, &["serve", "--bind", &address], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&format!("cannot listen on {address}")), "{stderr}");
    assert!(stderr.contains("--bind or RACELAB_BIND (port 0 picks a free one"), "{stderr}");
}

// `/runs/{id}` fills the form with the run's own settings (its `request`): the page's script does it
// on opening the URL. The browser test `a_run_url_shows_its_own_settings` is the one to run it;
// here the served scripts are checked to carry it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runs_page_fills_the_form_with_its_own_request() {
    racelab_testkit::run(racelab_core::Backend::Sqlite, |test: TestDb| async move {
        let app = spawn_app(&test).await;
        let page = app.client.get(format!("{}/runs/r-0000000000000000", app.address)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let form = app.client.get(format!("{}/assets/form.js", app.address)).send().await.unwrap();
        let form = form.text().await.unwrap();
        assert!(form.contains("export function fill(form, request)"), "{form}");
        let script = app.client.get(format!("{}/assets/app.js", app.address)).send().await.unwrap();
        let script = script.text().await.unwrap();
        assert!(script.contains("fill(form, run.request)"), "{script}");
    })
    .await;
}
