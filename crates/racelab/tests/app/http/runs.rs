//! `/experiments`: a run accepted (202 + Location), watched (GET, Server-Sent Events) and shown again;
//! its results the engine's outcomes, its trace showing the lost update; bad bodies named, unknown ids
//! 404, the run cap 429, the database away 503 and back.

use std::time::{Duration, Instant};

use racelab::http::experiments::RunLimits;
use racelab_core::{Backend, Experiment, Strategy};
use racelab_testkit::{TestDb, on_every_backend, on_server_backends};
use serde_json::{Value, json};

use crate::support::service::{Answer, Raw, Settings, TcpProxy, TestApp, assert_problem, keys, read_answer, spawn_app};

pub(super) async fn post(app: &TestApp, body: &Value) -> Answer {
    let response =
        app.client.post(format!("{}/experiments", app.address)).json(body).send().await.expect("POST /experiments");
    read_answer(response).await
}

/// POSTs `body`, asserts 202 with the run's `Location`, and returns the run's URL path.
pub(super) async fn start(app: &TestApp, body: Value) -> String {
    let answer = post(app, &body).await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    let id = answer.body["id"].as_str().expect("an id").to_owned();
    let location = answer.headers.get("location").and_then(|v| v.to_str().ok()).expect("Location");
    assert_eq!(location, format!("/experiments/{id}"));
    assert!(["queued", "running"].contains(&answer.body["state"].as_str().unwrap_or_default()), "{}", answer.text);
    location.to_owned()
}

/// Polls the run until it is over (a bound, not a wait: it returns as soon as it is), for at most 60 s.
pub(super) async fn finished(app: &TestApp, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run = app.ok(path).await;
        if ["finished", "failed", "stopped"].contains(&run["state"].as_str().unwrap_or_default()) {
            return run;
        }
        assert!(Instant::now() < deadline, "the run is not over after 60 s: {run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The outcome's keys as the engine serializes them (what `racelab lab --json` prints).
async fn engine_outcome_keys(test: &TestDb) -> Vec<String> {
    let outcome = Experiment::new(Strategy::Atomic, 1, 1).run(&test.connect().await).await.expect("engine run");
    keys(&serde_json::to_value(&outcome).unwrap())
}

async fn like_of(raw: &mut Raw, pk: i64) -> i64 {
    let int = if matches!(raw, Raw::Postgres(_)) { "BIGINT" } else { "SIGNED" };
    let sql = format!("SELECT CAST({} AS {int}) FROM posts WHERE pk = {pk}", raw.like());
    raw.count(&sql).await
}

// A lab of naive and atomic under a forced race: accepted, then finished with the engine's outcomes,
// whose counters are the database's own.
async fn a_lab_run_is_accepted_and_gives_the_engines_outcomes(test: TestDb) {
    let app = spawn_app(&test).await;
    let request =
        json!({"kind": "lab", "strategies": ["naive", "atomic"], "workers": 2, "increments": 3, "force_race": true});
    let path = start(&app, request).await;
    let run = finished(&app, &path).await;
    assert_eq!(run["state"], "finished", "{run}");
    assert_eq!(run["backend"], test.backend.as_str());
    assert_eq!(
        run["request"],
        json!({"kind": "lab", "strategies": ["naive", "atomic"], "workers": 2, "increments": 3, "force_race": true,
            "lock_mode": "wait", "post": null})
    );
    assert!(run["finished_at"].is_string() && run["error"].is_null(), "{run}");
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{run}");
    let engine_keys = engine_outcome_keys(&test).await;
    let mut raw = Raw::connect(&test).await;
    for (result, strategy) in results.iter().zip(["naive", "atomic"]) {
        assert_eq!(result["strategy"], strategy);
        assert_eq!(keys(result), engine_keys, "the outcome as the engine serializes it");
        assert_eq!((result["expected"].as_u64(), result["acknowledged"].as_u64()), (Some(6), Some(6)), "{result}");
        let pk = result["post"].as_i64().expect("post");
        assert_eq!(result["like_after"].as_i64(), Some(like_of(&mut raw, pk).await), "{result}");
    }
    assert!(results[0]["lost"].as_i64() >= Some(1), "the forced race loses: {}", results[0]);
    assert_eq!((results[1]["lost"].as_i64(), results[1]["actual"].as_i64()), (Some(0), Some(6)));
    // Progress at the end is the outcomes' figures.
    let progress = run["progress"].as_array().expect("progress");
    for (cell, result) in progress.iter().zip(results) {
        assert_eq!(cell["done"], true);
        for key in ["strategy", "workers", "expected", "acknowledged", "failed", "in_doubt", "retries"] {
            assert_eq!(cell[key], result[key], "{key}: {cell} vs {result}");
        }
    }
    // Small enough to be traced: one trace per strategy.
    let traced: Vec<&str> = run["traces"].as_array().unwrap().iter().filter_map(|t| t["strategy"].as_str()).collect();
    assert_eq!(traced, ["naive", "atomic"]);
    // Counted (the recorder is shared by the test binary's apps: a line, not a number, is asserted).
    let metrics = app.get("/metrics").await.text;
    assert!(metrics.contains("# HELP racelab_experiment_runs_total "), "no HELP line");
    assert!(metrics.contains("racelab_experiment_runs_total{kind=\"lab\",state=\"finished\"}"), "{metrics}");
}

// The drawing's data: two naive workers that both read 0, and the commit that overwrote the other's.
async fn the_naive_trace_shows_the_overwritten_increment(test: TestDb) {
    let app = spawn_app(&test).await;
    let request = json!({"kind": "lab", "strategies": ["naive"], "workers": 2, "increments": 1, "force_race": true});
    let run = finished(&app, &start(&app, request).await).await;
    let trace = &run["traces"][0];
    assert_eq!((trace["strategy"].as_str(), trace["truncated"].as_bool()), (Some("naive"), Some(false)), "{run}");
    let events = trace["events"].as_array().expect("events");
    let commits: Vec<&Value> = events.iter().filter(|e| e["kind"] == "commit").collect();
    assert_eq!(commits.len(), 2, "{trace}");
    assert!(commits.iter().all(|c| c["like"] == 1), "both wrote 1: {trace}");
    let overwrites: Vec<&&Value> = commits.iter().filter(|c| !c["overwrote"].is_null()).collect();
    assert_eq!(overwrites.len(), 1, "{trace}");
    let (first, second) = (commits[0], commits[1]);
    assert_eq!(second["overwrote"], json!({"worker": first["worker"], "increment": 0}), "{trace}");
    assert_eq!(run["results"][0]["lost"], 1);
    for event in events {
        assert_eq!(
            keys(event),
            ["attempt", "detail", "increment", "kind", "like", "overwrote", "seq", "t_us", "version", "worker"]
        );
    }
}

/// One server-sent event.
#[derive(Debug)]
struct Sent {
    name: String,
    data: Value,
}

/// Reads the event stream at `path` until `end` (at most 60 s).
async fn events(app: &TestApp, path: &str) -> Vec<Sent> {
    read_events(app.client.get(format!("{}{path}", app.address)).send().await.expect("GET events")).await
}

/// Reads an event stream until `end` (at most 60 s).
async fn read_events(mut response: reqwest::Response) -> Vec<Sent> {
    assert_eq!(response.status(), 200);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert_eq!(content_type, "text/event-stream");
    let mut text = String::new();
    let mut sent = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("the stream ends within 60 s")
            .expect("a chunk");
        let Some(chunk) = chunk else { panic!("the stream closed before `end`: {sent:?}") };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(at) = text.find("\n\n") {
            let block: String = text.drain(..at + 2).collect();
            let mut name = String::from("message");
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.trim_start().to_owned());
                }
            }
            if data.is_empty() {
                continue; // a keep-alive comment
            }
            let data = serde_json::from_str(&data.join("\n")).expect("JSON data");
            let end = name == "end";
            sent.push(Sent { name, data });
            if end {
                return sent;
            }
        }
    }
}

// The stream gives progress, each result and trace, and the end; a client that comes after the end
// gets the same at once.
async fn the_event_stream_delivers_progress_results_and_the_end(test: TestDb) {
    let app = spawn_app(&test).await;
    let request = json!({"kind": "lab", "strategies": ["atomic", "optimistic"], "workers": 2, "increments": 5, "force_race": true});
    let path = start(&app, request).await;
    let live = events(&app, &format!("{path}/events")).await;
    let run = app.ok(&path).await;
    assert_eq!(run["state"], "finished");
    for stream in [live, events(&app, &format!("{path}/events")).await] {
        let named = |name: &str| stream.iter().filter(|e| e.name == name).map(|e| &e.data).collect::<Vec<_>>();
        let progress = named("progress");
        assert!(!progress.is_empty(), "{stream:?}");
        let last = progress.last().unwrap().as_array().unwrap();
        assert!(last.iter().all(|cell| cell["done"] == true), "{stream:?}");
        let results: Vec<Value> = named("result").into_iter().cloned().collect();
        assert_eq!(Value::from(results), run["results"]);
        let traces: Vec<Value> = named("trace").into_iter().cloned().collect();
        assert_eq!(Value::from(traces), run["traces"]);
        assert!(named("error").is_empty());
        let end = stream.last().unwrap();
        assert_eq!(end.name, "end");
        assert_eq!(end.data, run, "the end is the final run view");
    }
    // The optimistic conflict and its retry are in its trace.
    let optimistic = &run["traces"][1]["events"];
    let kinds: Vec<&str> = optimistic.as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"conflict") && kinds.contains(&"retry"), "{kinds:?}");
}

// A bench sweeps strategies x worker counts, one outcome each, no trace.
async fn a_bench_run_sweeps_worker_counts(test: TestDb) {
    let app = spawn_app(&test).await;
    let request = json!({"kind": "bench", "strategies": ["atomic", "pessimistic"], "workers": [2, 1], "increments": 5});
    let run = finished(&app, &start(&app, request).await).await;
    assert_eq!(run["state"], "finished", "{run}");
    assert_eq!(run["request"]["workers"], json!([1, 2]));
    let cells: Vec<(String, u64)> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["strategy"].as_str().unwrap().to_owned(), r["workers"].as_u64().unwrap()))
        .collect();
    let expected = [("atomic", 1), ("atomic", 2), ("pessimistic", 1), ("pessimistic", 2)];
    assert_eq!(cells, expected.map(|(s, w)| (s.to_owned(), w)));
    assert!(run["results"].as_array().unwrap().iter().all(|r| r["lost"] == 0), "{run}");
    assert_eq!(run["progress"].as_array().map(Vec::len), Some(4));
    assert_eq!(run["traces"], json!([]));
}

// The anomalies matrix, as `racelab anomalies --json` prints it.
async fn an_anomalies_run_gives_the_matrix(test: TestDb) {
    let app = spawn_app(&test).await;
    let run = finished(&app, &start(&app, json!({"kind": "anomalies"})).await).await;
    assert_eq!(run["state"], "finished", "{run}");
    assert_eq!(run["request"], json!({"kind": "anomalies"}));
    let matrix = &run["anomalies"];
    assert_eq!(matrix["backend"], test.backend.as_str());
    let levels: Vec<&str> = matrix["columns"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    let expected: Vec<&str> = racelab_core::anomalies::Level::of(test.backend).iter().map(|l| l.name()).collect();
    assert_eq!(levels, expected);
    assert!(matrix["columns"][0]["cells"].as_array().is_some_and(|cells| !cells.is_empty()), "{matrix}");
    // No URL is shown with a password, and there is none here: it is the redacted one.
    assert_eq!(matrix["urls"].as_array().map(Vec::len), Some(1));
}

async fn unknown_runs_are_404(test: TestDb) {
    let app = spawn_app(&test).await;
    for path in ["/experiments/r-0000000000000000", "/experiments/r-0000000000000000/events"] {
        let answer = app.get(path).await;
        let problem = assert_problem(&answer, 404);
        assert!(problem["detail"].as_str().unwrap().contains("r-0000000000000000"), "{}", answer.text);
    }
}

// Every refusal names its member; a body that is not JSON is a 400, one of another type a 415.
async fn bad_bodies_are_refused_naming_the_member(test: TestDb) {
    let app = spawn_app(&test).await;
    let unsupported = if test.backend == Backend::Sqlite { "advisory" } else { "no-such-strategy" };
    for (body, member) in [
        (json!({"strategies": ["naive"]}), "kind"),
        (json!({"kind": "lap"}), "kind"),
        (json!({"kind": "lab", "workers": 0}), "workers"),
        (json!({"kind": "lab", "workers": 33}), "workers"),
        (json!({"kind": "bench", "workers": [1, "2"]}), "workers"),
        (json!({"kind": "lab", "increments": 1001}), "increments"),
        (json!({"kind": "lab", "strategies": [unsupported]}), "strategies"),
        (json!({"kind": "lab", "force_race": 1}), "force_race"),
        (json!({"kind": "lab", "lock_mode": "forever"}), "lock_mode"),
        (json!({"kind": "lab", "post": -1}), "post"),
        (json!({"kind": "lab", "speed": "fast"}), "speed"),
        (json!(["lab"]), "body"),
    ] {
        let answer = post(&app, &body).await;
        let problem = assert_problem(&answer, 422);
        assert_eq!(problem["invalid_params"][0]["name"], member, "{body}: {}", answer.text);
        assert!(problem["detail"].as_str().unwrap().contains(&format!("`{member}`")), "{}", answer.text);
    }
    let send = |content_type: &'static str, body: &'static str| {
        app.client.post(format!("{}/experiments", app.address)).header("content-type", content_type).body(body).send()
    };
    let answer = read_answer(send("application/json", "{\"kind\": ").await.unwrap()).await;
    assert_eq!(assert_problem(&answer, 400)["type"], "urn:racelab:problem:malformed-body");
    let answer = read_answer(send("text/plain", "{\"kind\": \"lab\"}").await.unwrap()).await;
    assert_problem(&answer, 415);
}

/// Holds the write lock of post 1 (a row lock on a server; the database's write lock on SQLite).
async fn hold_post_1(test: &TestDb) -> Raw {
    let mut holder = Raw::connect(test).await;
    if test.backend == Backend::Sqlite {
        holder.execute("BEGIN IMMEDIATE").await;
    } else {
        holder.hold_row_lock(1).await;
    }
    holder
}

// With --max-runs 1, a run stuck behind a lock the test holds keeps the next one out (429 with
// Retry-After); once it has finished, a new one starts.
async fn the_run_cap_answers_429_until_a_run_ends(test: TestDb) {
    let runs = RunLimits { max_runs: 1, ..RunLimits::default() };
    let app = Settings { runs, lock_timeout: Duration::from_secs(60), ..Settings::default() }.spawn(&test.url).await;
    app.ok("/test-db/init").await;
    let mut holder = hold_post_1(&test).await;
    let stuck =
        start(&app, json!({"kind": "lab", "strategies": ["atomic"], "workers": 1, "increments": 1, "post": 1})).await;

    let answer = post(&app, &json!({"kind": "lab", "strategies": ["atomic"]})).await;
    let problem = assert_problem(&answer, 429);
    assert_eq!(problem["type"], "urn:racelab:problem:too-many-runs", "{}", answer.text);
    assert!(answer.headers.contains_key("retry-after"), "no Retry-After");
    let state = app.ok(&stuck).await["state"].clone();
    assert!(state == "running" || state == "queued", "{state}");

    holder.execute("COMMIT").await;
    let run = finished(&app, &stuck).await;
    assert_eq!((run["state"].as_str(), run["results"][0]["actual"].as_i64()), (Some("finished"), Some(1)), "{run}");
    let next = start(&app, json!({"kind": "lab", "strategies": ["atomic"], "workers": 1, "increments": 1})).await;
    assert_eq!(finished(&app, &next).await["state"], "finished");
}

async fn stop(app: &TestApp, path: &str) -> Answer {
    let response = app.client.post(format!("{}{path}/stop", app.address)).send().await.expect("POST stop");
    read_answer(response).await
}

// A run stuck behind a lock the test holds is stopped by request: 202 at once; once the lock is
// released it ends `stopped` after the increments that were in flight, its accounting whole (every
// increment acknowledged, failed, in doubt or counted stopped), the counter equal to what was
// acknowledged, and the second strategy never started. Stopping it again is 200; an unknown run 404.
async fn a_run_is_stopped_by_request_with_its_accounting_whole(test: TestDb) {
    let app = Settings { lock_timeout: Duration::from_secs(60), ..Settings::default() }.spawn(&test.url).await;
    app.ok("/test-db/init").await;
    let mut holder = hold_post_1(&test).await;
    let body =
        json!({"kind": "lab", "strategies": ["pessimistic", "atomic"], "workers": 2, "increments": 50, "post": 1});
    let path = start(&app, body).await;
    // Running: its experiment has started, its workers wait on the lock.
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.ok(&path).await["state"] != "running" {
        assert!(Instant::now() < deadline, "the run did not start in 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let stopping = stop(&app, &path).await;
    assert_eq!(stopping.status, 202, "{}", stopping.text);
    holder.execute("COMMIT").await;
    let run = finished(&app, &path).await;

    assert_eq!(run["state"], "stopped", "{run}");
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "the second strategy started after the stop, or the first left nothing: {run}");
    let outcome = &results[0];
    assert_eq!(outcome["strategy"], "pessimistic", "{run}");
    let count = |key: &str| outcome[key].as_u64().unwrap_or_else(|| panic!("{key}: {outcome}"));
    let stopped = outcome["errors"]["stopped"].as_u64().unwrap_or(0);
    assert_eq!(count("acknowledged") + count("failed") + count("in_doubt"), count("expected"), "{outcome}");
    assert!(stopped >= count("expected") - 2, "more than the 2 increments in flight were made: {outcome}");
    assert_eq!(outcome["actual"].as_u64(), Some(count("acknowledged")), "{outcome}");
    let again = stop(&app, &path).await;
    assert_eq!((again.status.as_u16(), again.body["state"].as_str()), (200, Some("stopped")), "{}", again.text);
    assert_problem(&stop(&app, "/experiments/r-0000000000000000").await, 404);
}

// The database away: a run cannot start (503 with Retry-After, nothing registered); back: it can.
async fn a_run_that_cannot_start_is_503_and_the_next_starts_once_the_database_is_back(test: TestDb) {
    let (upstream, rewrite) = TcpProxy::route(&test.url);
    let proxy = TcpProxy::start(upstream).await;
    let app = crate::support::service::spawn_app_at(&rewrite(proxy.port), Duration::from_secs(1)).await;
    app.ok("/ready").await;
    let request = json!({"kind": "lab", "strategies": ["atomic"], "workers": 2, "increments": 2});

    proxy.cut();
    let answer = post(&app, &request).await;
    let problem = assert_problem(&answer, 503);
    assert_eq!(problem["type"], "urn:racelab:problem:database-unavailable", "{}", answer.text);
    assert!(answer.headers.contains_key("retry-after"));
    assert!(!answer.text.contains("127.0.0.1") && !answer.text.contains("racelab_t_"), "{}", answer.text);

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    let path = loop {
        let answer = post(&app, &request).await;
        if answer.status == 202 {
            break answer.headers["location"].to_str().unwrap().to_owned();
        }
        assert_problem(&answer, 503);
        assert!(Instant::now() < deadline, "no run started 20 s after the database came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let run = finished(&app, &path).await;
    assert_eq!((run["state"].as_str(), run["results"][0]["actual"].as_i64()), (Some("finished"), Some(4)), "{run}");
}

// The database goes away midway: the run ends `failed` with the problem `/test-db` would answer (503,
// its `experiment` the outcome), the outcome also among the results; the stream says `error`, then
// `end`. Once the database is back, a new run finishes.
async fn a_run_whose_database_goes_away_ends_failed_with_what_it_did(test: TestDb) {
    let (upstream, rewrite) = TcpProxy::route(&test.url);
    let proxy = TcpProxy::start(upstream).await;
    let app = crate::support::service::spawn_app_at(&rewrite(proxy.port), Duration::from_secs(1)).await;
    app.ok("/test-db/init").await;
    let mut raw = Raw::connect(&test).await;
    let request = json!({"kind": "lab", "strategies": ["atomic"], "workers": 4, "increments": 1000, "post": 1});
    let path = start(&app, request).await;
    // Acknowledged increments seen by the service itself (a write seen in the row may not be yet).
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.ok(&path).await["progress"][0]["acknowledged"].as_u64() == Some(0) {
        assert!(Instant::now() < deadline, "the run acknowledged nothing within 20 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proxy.cut();

    let stream = events(&app, &format!("{path}/events")).await;
    let names: Vec<&str> = stream.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names[names.len() - 2..], ["error", "end"], "{names:?}");
    let run = &stream.last().unwrap().data;
    assert_eq!(run["state"], "failed", "{run}");
    let error = &run["error"];
    assert_eq!(
        (error["status"].as_u64(), error["type"].as_str()),
        (Some(503), Some("urn:racelab:problem:database-unavailable"))
    );
    assert_eq!(&stream[stream.len() - 2].data, error);
    let outcome = &run["results"][0];
    assert_eq!(&error["experiment"], outcome, "the problem carries the outcome");
    let count = |name: &str| outcome[name].as_u64().unwrap_or_else(|| panic!("no `{name}`: {outcome}"));
    assert_eq!(count("acknowledged") + count("failed") + count("in_doubt"), 4000, "{outcome}");
    assert!(count("acknowledged") > 0 && count("acknowledged") < 4000, "{outcome}");
    assert!(!run.to_string().contains("127.0.0.1"), "no URL in the view: {run}");

    proxy.restore();
    raw.wait_until_no_other_statement_runs().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let next = loop {
        let answer = post(&app, &json!({"kind": "lab", "strategies": ["atomic"], "workers": 2, "increments": 5})).await;
        if answer.status == 202 {
            break answer.headers["location"].to_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no run started 20 s after the database came back: {}", answer.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let run = finished(&app, &next).await;
    assert_eq!((run["state"].as_str(), run["results"][0]["actual"].as_i64()), (Some("finished"), Some(10)), "{run}");
}

// The server shuts down while a run goes on: the run stops after the increments in flight (`stopped`,
// the rest counted as such), its stream ends with `end`, and the drain does not wait for the grace.
async fn a_shutdown_stops_runs_and_ends_their_streams(test: TestDb) {
    let app = Settings { shutdown_grace: Duration::from_secs(30), ..Settings::default() }.spawn(&test.url).await;
    let path = start(&app, json!({"kind": "lab", "strategies": ["atomic"], "workers": 2, "increments": 1000})).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.ok(&path).await["progress"][0]["acknowledged"].as_u64() == Some(0) {
        assert!(Instant::now() < deadline, "the run made no increment within 20 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stream = app.client.get(format!("{}{path}/events", app.address)).send().await.expect("GET events");
    let began = Instant::now();
    let server = app.stop();
    let sent = read_events(stream).await;
    let run = &sent.last().unwrap().data;
    assert_eq!(run["state"], "stopped", "{run}");
    let outcome = &run["results"][0];
    assert!(outcome["errors"]["stopped"].as_u64() > Some(0), "{outcome}");
    assert_eq!(outcome["acknowledged"].as_i64(), outcome["actual"].as_i64(), "{outcome}");
    tokio::time::timeout(Duration::from_secs(20), server).await.expect("drained").expect("task").expect("served");
    assert!(began.elapsed() < Duration::from_secs(20), "the drain waited {:?}", began.elapsed());
}

// Finished runs are kept at most --max-kept-runs (the oldest forgotten first) and for --run-retention.
async fn finished_runs_are_forgotten_past_the_count_and_the_retention(test: TestDb) {
    let small = json!({"kind": "lab", "strategies": ["atomic"], "workers": 1, "increments": 1});
    let runs = RunLimits { max_kept: 1, ..RunLimits::default() };
    let app = Settings { runs, ..Settings::default() }.spawn(&test.url).await;
    let first = start(&app, small.clone()).await;
    finished(&app, &first).await;
    let second = start(&app, small.clone()).await;
    finished(&app, &second).await;
    assert_problem(&app.get(&first).await, 404);
    app.ok(&second).await;

    let runs = RunLimits { retention: Duration::ZERO, ..RunLimits::default() };
    let app = Settings { runs, ..Settings::default() }.spawn(&test.url).await;
    let gone = start(&app, small).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = app.get(&gone).await;
        if answer.status == 404 {
            break;
        }
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_ne!(answer.body["state"], "finished", "a finished run outlived a retention of 0");
        assert!(Instant::now() < deadline, "the run was not forgotten 20 s after it started: {}", answer.text);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

on_every_backend!(
    a_lab_run_is_accepted_and_gives_the_engines_outcomes,
    the_naive_trace_shows_the_overwritten_increment,
    the_event_stream_delivers_progress_results_and_the_end,
    a_bench_run_sweeps_worker_counts,
    an_anomalies_run_gives_the_matrix,
    unknown_runs_are_404,
    bad_bodies_are_refused_naming_the_member,
    the_run_cap_answers_429_until_a_run_ends,
    a_run_is_stopped_by_request_with_its_accounting_whole,
    a_shutdown_stops_runs_and_ends_their_streams,
    finished_runs_are_forgotten_past_the_count_and_the_retention,
);

on_server_backends!(
    a_run_that_cannot_start_is_503_and_the_next_starts_once_the_database_is_back,
    a_run_whose_database_goes_away_ends_failed_with_what_it_did,
);
