//! `/experiments` with `kind: "spec"`: an isolation-tester spec run on the server's own database, its
//! result the JSON `racelab spec --format json` prints (a row lock's waiting step and its completion,
//! told by the database), sent on the event stream; a stopped run cancels its waiting step and still
//! tears down; a spec that does not parse is refused naming its line and column, and every other
//! refusal names its member; `GET /specs` lists the repository's spec files.

use std::time::Duration;

use racelab_core::Backend;
use racelab_testkit::{TestDb, on_every_backend, on_server_backends};
use serde_json::{Value, json};

use super::runs::{finished, post, start};
use racelab::http::experiments::RunLimits;

use crate::support::service::{Raw, Settings, TestApp, assert_problem, spawn_app};

/// The repository's row-lock spec, in the SQL all three backends take (no RETURNING, no FOR UPDATE):
/// in its first permutation s1 holds the row, s2's write waits for it, completes when s1 commits and
/// reads what both took; in its second nothing waits.
const ROW_LOCK: &str = include_str!("../../../../../specs/row-lock.spec");

/// A permutation's events as `(step, what)`: `waits`, `done` or `waited` (completed after waiting),
/// in the order reported.
fn trace(permutation: &Value) -> Vec<(String, String)> {
    let events = permutation["events"].as_array().expect("events");
    events
        .iter()
        .filter_map(|event| {
            let step = event["step"].as_str()?.to_owned();
            match event["event"].as_str()? {
                "waiting" => Some((step, "waits".to_owned())),
                "done" if event["waited"] == true => Some((step, "waited".to_owned())),
                "done" => Some((step, "done".to_owned())),
                _ => None,
            }
        })
        .collect()
}

/// One server-sent event: its name and JSON data.
#[derive(Debug)]
struct Sent {
    name: String,
    data: Value,
}

/// Reads the run's event stream until `end` (at most 60 s).
async fn events(app: &TestApp, path: &str) -> Vec<Sent> {
    let mut response = app.client.get(format!("{}{path}/events", app.address)).send().await.expect("GET events");
    assert_eq!(response.status(), 200);
    let (mut text, mut sent) = (String::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await.expect("`end` within 60 s");
        let Some(chunk) = chunk.expect("a chunk") else { panic!("the stream closed before `end`: {sent:?}") };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(at) = text.find("\n\n") {
            let block: String = text.drain(..at + 2).collect();
            let name = block.lines().find_map(|l| l.strip_prefix("event:")).map(str::trim).unwrap_or("message");
            let data: Vec<&str> = block.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
            if data.is_empty() {
                continue; // a keep-alive comment
            }
            let sent_now = Sent { name: name.to_owned(), data: serde_json::from_str(&data.join("\n")).expect("JSON") };
            let end = sent_now.name == "end";
            sent.push(sent_now);
            if end {
                return sent;
            }
        }
    }
}

// The row lock's run on the server's database: s2's write reported waiting, then completed once s1
// committed (the step timeout is the default 10 s: a wait the runner failed to see would show as a
// cancelled step, not as this trace), and s2 reads 3. The stream sends the same result, then the end.
async fn a_spec_run_shows_the_waiting_step_and_its_completion(test: TestDb) {
    let app = spawn_app(&test).await;
    let path = start(&app, json!({"kind": "spec", "spec": ROW_LOCK})).await;
    let stream = events(&app, &path).await;
    let run = finished(&app, &path).await;
    assert_eq!(run["state"], "finished", "{run}");
    assert_eq!(run["kind"], "spec", "{run}");
    assert_eq!(run["request"], json!({"kind": "spec", "spec": ROW_LOCK, "permutation": null, "step_timeout": 10}));
    let result = &run["spec"];
    assert_eq!(result["stopped"], Value::Null, "{result}");
    assert_eq!(result["run"]["sessions"], json!(["s1", "s2"]), "{result}");
    assert_eq!(result["spec"]["sessions"][1]["steps"][1]["name"], "s2_take", "the spec as parsed: {result}");
    let permutations = result["run"]["permutations"].as_array().expect("permutations");
    assert_eq!(permutations.len(), 2, "{result}");
    let expected = [
        ("s1_begin", "done"),
        ("s2_begin", "done"),
        ("s1_take", "done"),
        ("s2_take", "waits"),
        ("s1_commit", "done"),
        ("s2_take", "waited"),
        ("s2_read", "done"),
        ("s2_commit", "done"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(trace(&permutations[0]), expected, "{result}");
    let read = permutations[0]["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["event"] == "done" && e["step"] == "s2_read"))
        .expect("s2_read done");
    assert_eq!(read["answer"]["tables"][0]["rows"], json!([["3"]]), "{read}");
    assert_eq!(read["answer"]["error"], Value::Null, "{read}");
    // The stream: the whole spec's result once, then the final view.
    let results: Vec<&Value> = stream.iter().filter(|e| e.name == "result").map(|e| &e.data).collect();
    assert_eq!(results, vec![&run["spec"]], "{stream:?}");
    let end = stream.last().expect("events");
    assert_eq!((end.name.as_str(), &end.data), ("end", &run), "{stream:?}");
    // The teardown ran: the spec's table is gone from the server's database.
    let mut raw = Raw::connect(&test).await;
    assert_eq!(raw.count(&tables_named(test.backend, "stock")).await, 0);
    // One permutation of several, by `permutation`.
    let body = json!({"kind": "spec", "spec": ROW_LOCK, "permutation": "s1_begin s1_take s1_commit s2_read",
        "step_timeout": 5});
    let run = finished(&app, &start(&app, body).await).await;
    assert_eq!(run["state"], "finished", "{run}");
    let permutation = &run["spec"]["run"]["permutations"][0];
    assert_eq!(permutation["steps"], json!(["s1_begin", "s1_take", "s1_commit", "s2_read"]), "{run}");
    assert_eq!(run["request"]["step_timeout"], 5, "{run}");
}

/// A count of the tables named `name` in the test's database, in its backend's catalog.
fn tables_named(backend: Backend, name: &str) -> String {
    match backend {
        Backend::Postgres => format!(
            "SELECT COUNT(*)::BIGINT FROM information_schema.tables WHERE table_schema = current_schema() \
             AND table_name = '{name}'"
        ),
        Backend::MySql => format!(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.tables WHERE table_schema = DATABASE() \
             AND table_name = '{name}'"
        ),
        Backend::Sqlite => format!("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{name}'"),
    }
}

// A step waits for a row the test holds; the run is stopped while it waits (seen in the server's own
// lock view): the step is cancelled, the session rolled back, the teardown run, the run `stopped`
// with the result so far and nothing left uncleaned. Without the stop the step would wait until the
// test let go: the stop is what ended it.
async fn a_stopped_spec_run_cancels_its_waiting_step_and_tears_down(test: TestDb) {
    let app = spawn_app(&test).await;
    let mut holder = Raw::connect(&test).await;
    holder.execute("CREATE TABLE outside (id int PRIMARY KEY)").await;
    holder.execute("INSERT INTO outside VALUES (1)").await;
    holder.execute("BEGIN").await;
    holder.execute("SELECT id FROM outside WHERE id = 1 FOR UPDATE").await;
    let text = "setup { CREATE TABLE mine (id int); }\nteardown { DROP TABLE mine; }\n\
                session s1 setup { BEGIN; } step take { SELECT id FROM outside WHERE id = 1 FOR UPDATE; }\n\
                step done { COMMIT; }";
    let path = start(&app, json!({"kind": "spec", "spec": text, "step_timeout": 60})).await;
    let mut observer = Raw::connect(&test).await;
    observer.wait_for_statement_waiting("SELECT id FROM outside WHERE id = 1 FOR UPDATE%").await;
    let response = app.client.post(format!("{}{path}/stop", app.address)).send().await.expect("POST stop");
    assert_eq!(response.status(), 202);
    let run = finished(&app, &path).await;
    assert_eq!(run["state"], "stopped", "{run}");
    let stopped = &run["spec"]["stopped"];
    assert_eq!(stopped["message"], "interrupted", "{run}");
    assert_eq!(stopped["not_cleaned"], json!([]), "{run}");
    assert_eq!(observer.count(&tables_named(test.backend, "mine")).await, 0, "the teardown ran: {run}");
    holder.execute("ROLLBACK").await;
}

// A spec whose setup fails stops as isolationtester stops (its message), and the run fails with a
// problem saying so, its result kept: the permutation as far as it went, and the teardown tried.
async fn a_spec_whose_setup_fails_ends_the_run_failed_with_its_message(test: TestDb) {
    let app = spawn_app(&test).await;
    let text = "setup { CREATE TABLE made (id int); }\nsetup { SELECT * FROM no_such_table; }\n\
                teardown { DROP TABLE made; }\nsession s1 step a { SELECT 1; }";
    let run = finished(&app, &start(&app, json!({"kind": "spec", "spec": text})).await).await;
    assert_eq!(run["state"], "failed", "{run}");
    let message = run["spec"]["stopped"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("setup failed: "), "{run}");
    assert_eq!(run["spec"]["stopped"]["not_cleaned"], json!([]), "{run}");
    let error = &run["error"];
    assert_eq!(error["type"], "urn:racelab:problem:spec-stopped", "{run}");
    assert_eq!(error["status"], 422, "{run}");
    assert_eq!(error["detail"], format!("the spec's run stopped: {message}"), "{run}");
    let mut raw = Raw::connect(&test).await;
    assert_eq!(raw.count(&tables_named(test.backend, "made")).await, 0, "the teardown ran: {run}");
}

// A spec that does not parse is a 422 naming `spec`, with the line and column of the parser's error.
async fn a_spec_that_does_not_parse_is_refused_with_its_line_and_column(test: TestDb) {
    let app = spawn_app(&test).await;
    let text = "session s1\nstep a { SELECT 1; }\nstep b SELECT 2;\n";
    let answer = post(&app, &json!({"kind": "spec", "spec": text})).await;
    let problem = assert_problem(&answer, 422);
    assert_eq!(problem["invalid_params"][0]["name"], "spec", "{}", answer.text);
    let reason = problem["invalid_params"][0]["reason"].as_str().unwrap_or_default();
    // The scanner takes `SELECT 2` for words of the spec, and stops at the `;` after them.
    assert_eq!(reason, "does not parse: line 3, column 16: unexpected character ';'");
}

// Each refusal names its member: the spec missing or not text, another kind's member beside a spec,
// a spec's member on another kind, the step timeout out of range, a permutation naming a step the spec
// has not, too many sessions or interleavings, a member no run has.
async fn bad_spec_bodies_are_refused_naming_the_member(test: TestDb) {
    let app = spawn_app(&test).await;
    let nine_sessions: String = (1..=9).map(|i| format!("session s{i} step t{i} {{ SELECT 1; }}\n")).collect();
    // Three sessions of four steps and no permutation line: 34650 interleavings.
    let many: String = (1..=3)
        .map(|s| {
            let steps: String = (1..=4).map(|t| format!("step s{s}t{t} {{ SELECT 1; }} ")).collect();
            format!("session s{s} {steps}\n")
        })
        .collect();
    for (body, member) in [
        (json!({"kind": "spec"}), "spec"),
        (json!({"kind": "spec", "spec": null}), "spec"),
        (json!({"kind": "spec", "spec": 3}), "spec"),
        (json!({"kind": "spec", "spec": "x".repeat(12 * 1024 + 1)}), "spec"),
        (json!({"kind": "spec", "spec": ROW_LOCK, "workers": 2}), "workers"),
        (json!({"kind": "spec", "spec": ROW_LOCK, "strategies": ["naive"]}), "strategies"),
        (json!({"kind": "spec", "spec": ROW_LOCK, "workload": "stock"}), "workload"),
        (json!({"kind": "lab", "spec": ROW_LOCK}), "spec"),
        (json!({"kind": "anomalies", "step_timeout": 5}), "step_timeout"),
        (json!({"kind": "bench", "permutation": "s1_begin"}), "permutation"),
        (json!({"kind": "spec", "spec": ROW_LOCK, "step_timeout": 0}), "step_timeout"),
        (json!({"kind": "spec", "spec": ROW_LOCK, "step_timeout": 61}), "step_timeout"),
        (json!({"kind": "spec", "spec": ROW_LOCK, "step_timeout": 300}), "step_timeout"),
        (json!({"kind": "spec", "spec": ROW_LOCK, "permutation": "s1_begin nosuch"}), "permutation"),
        (json!({"kind": "spec", "spec": ROW_LOCK, "permutation": ""}), "permutation"),
        (json!({"kind": "spec", "spec": nine_sessions}), "spec"),
        (json!({"kind": "spec", "spec": many}), "spec"),
        (json!({"kind": "spec", "spec": ROW_LOCK, "colour": "red"}), "colour"),
    ] {
        let answer = post(&app, &body).await;
        let problem = assert_problem(&answer, 422);
        assert_eq!(problem["invalid_params"][0]["name"], member, "{body}: {}", answer.text);
    }
    let answer = post(&app, &json!({"kind": "spec", "spec": ROW_LOCK, "permutation": "s1_begin nosuch"})).await;
    assert!(answer.text.contains("nosuch"), "{}", answer.text);
}

// What the page's picker reads: every spec file of the repository (the directory, read now, so a
// file added and not embedded fails here), by its path under specs/, with its text.
async fn the_repositorys_specs_are_listed_with_their_text(test: TestDb) {
    let app = spawn_app(&test).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs");
    let mut on_disk = Vec::new();
    for dir in ["", "hermitage/"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("specs/") {
            let name = entry.expect("an entry").file_name().to_string_lossy().into_owned();
            if name.ends_with(".spec") {
                let text = std::fs::read_to_string(root.join(dir).join(&name)).expect("a spec file");
                on_disk.push(json!({"name": format!("{dir}{name}"), "text": text}));
            }
        }
    }
    let listed = app.ok("/specs").await;
    let mut listed = listed.as_array().expect("a list").clone();
    let by_name = |a: &Value, b: &Value| a["name"].as_str().cmp(&b["name"].as_str());
    listed.sort_by(by_name);
    on_disk.sort_by(by_name);
    assert!(on_disk.len() >= 9, "{on_disk:?}");
    assert_eq!(listed, on_disk);
}

// A server started with --no-spec-runs refuses a spec run (403, naming the switch) and runs nothing of
// it: the table its setup would make does not exist; a lab still runs.
async fn a_server_without_spec_runs_refuses_them(test: TestDb) {
    let runs = RunLimits { spec_runs: false, ..RunLimits::default() };
    let app = Settings { runs, ..Settings::default() }.spawn(&test.url).await;
    let answer = post(&app, &json!({"kind": "spec", "spec": ROW_LOCK})).await;
    let problem = assert_problem(&answer, 403);
    assert_eq!(problem["type"], "urn:racelab:problem:spec-runs-off", "{}", answer.text);
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("--no-spec-runs")), "{problem}");
    let left = Raw::connect(&test).await.count(&tables_named(test.backend, "stock")).await;
    assert_eq!(left, 0, "the spec's setup must not have run");
    let lab = finished(&app, &start(&app, json!({"kind": "lab", "strategies": ["atomic"]})).await).await;
    assert_eq!(lab["state"], "finished", "{lab}");
}

on_every_backend!(
    a_spec_run_shows_the_waiting_step_and_its_completion,
    a_spec_whose_setup_fails_ends_the_run_failed_with_its_message,
    a_spec_that_does_not_parse_is_refused_with_its_line_and_column,
    bad_spec_bodies_are_refused_naming_the_member,
    the_repositorys_specs_are_listed_with_their_text,
    a_server_without_spec_runs_refuses_them,
);

on_server_backends!(a_stopped_spec_run_cancels_its_waiting_step_and_tears_down);
