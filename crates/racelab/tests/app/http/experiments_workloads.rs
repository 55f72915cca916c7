//! `/experiments` with a workload beyond the counter: a stock lab under a forced race gives the
//! engine's workload outcomes, naive's invariant broken and every safe strategy's held, proven by the
//! database's rows; a workload's strategies, isolation and sizes are checked, each refusal naming its
//! member; the counter at an isolation level runs as one of them; `GET /workloads` lists what the page
//! offers.

use racelab_core::{Backend, Workload};
use racelab_testkit::{TestDb, on_every_backend};
use serde_json::{Value, json};

use super::runs::{finished, post, start};
use crate::support::service::{Raw, assert_problem, spawn_app};

/// Installs a trigger in the test's database that takes one more unit from a stock item each time a
/// sale takes one: a writer beside the run's (deterministic, no timing), whose units left the stock
/// with no sale, which no strategy can prevent and the invariant must see.
async fn take_a_unit_beside_each_sale(test: &TestDb) {
    // The app connects at its first request: the tables are made (migrated) here first.
    test.connect().await.close().await;
    let mut raw = Raw::connect(test).await;
    let sql = racelab_testkit::fixtures::take_one_more_unit_trigger(test.backend);
    raw.execute(sql).await;
}

// 4 buyers x 2 purchases of the default stock (4, half the demand), each buyer's first purchase read
// before any writes: naive sells units the stock never lost; every safe strategy sells exactly 4.
async fn a_stock_lab_shows_naive_overselling_and_the_safe_strategies_holding(test: TestDb) {
    let app = spawn_app(&test).await;
    let request = json!({"kind": "lab", "workload": "stock", "workers": 4, "increments": 2, "force_race": true});
    let run = finished(&app, &start(&app, request).await).await;
    assert_eq!(run["state"], "finished", "{run}");
    assert_eq!(run["request"]["workload"], "stock", "{run}");
    assert_eq!(run["request"]["isolation"], Value::Null, "{run}");
    let results = run["results"].as_array().expect("results");
    let names: Vec<&str> = results.iter().filter_map(|r| r["strategy"].as_str()).collect();
    assert_eq!(names, Workload::Stock.strategies(), "every stock strategy, in order: {run}");
    for result in results {
        let strategy = result["strategy"].as_str().unwrap_or_default();
        assert_eq!(result["workload"], "stock", "{result}");
        assert_eq!(result["invariant"]["name"], "no-oversell", "{result}");
        assert_eq!(result["sizes"]["stock"], 4, "{result}");
        let counted: u64 =
            ["acknowledged", "refused", "failed", "in_doubt"].iter().filter_map(|k| result[*k].as_u64()).sum();
        assert_eq!(counted, 8, "every purchase counted once: {result}");
        match Workload::Stock.is_safe(strategy) {
            Some(true) => {
                assert_eq!(result["safe"], true, "{result}");
                assert_eq!(result["invariant"]["held"], true, "{strategy}: {result}");
                assert_eq!(result["invariant"]["violations"], 0, "{strategy}: {result}");
                assert_eq!(
                    (result["acknowledged"].as_u64(), result["refused"].as_u64()),
                    (Some(4), Some(4)),
                    "{result}"
                );
            }
            _ if strategy == "naive" => {
                assert_eq!(result["safe"], false, "{result}");
                assert_eq!(result["invariant"]["held"], false, "naive oversells under the forced race: {result}");
                assert!(result["invariant"]["violations"].as_u64() >= Some(1), "{result}");
            }
            _ => {}
        }
    }
    assert!(names.contains(&"naive"), "{names:?}");
    // Progress: the same counts, refusals included, and no counter trace.
    let progress = run["progress"].as_array().expect("progress");
    for (cell, result) in progress.iter().zip(results) {
        for key in ["strategy", "workers", "acknowledged", "refused", "failed", "in_doubt"] {
            assert_eq!(cell[key], result[key], "{key}: {cell} vs {result}");
        }
    }
    assert_eq!(run["traces"], json!([]));
    // A lab this small carries each workload result's own trace: naive's marks the purchases that
    // oversold (which others overlapped them is the run's timing: the engine's tests force that); a
    // safe strategy's marks nothing.
    for result in results {
        let trace = &result["trace"];
        assert!(trace["events"].as_array().is_some_and(|e| !e.is_empty()), "{result}");
        let marked = trace["marked"].as_array().expect("marked");
        if result["strategy"] == "naive" {
            assert!(marked.iter().any(|m| m["role"] == "broke"), "{trace}");
        } else {
            assert_eq!(marked.len(), 0, "{trace}");
        }
    }
}

// The counter at a level runs through the workloads' runner, as `racelab lab --workload counter
// --isolation` does: 4 workers x 3 increments at read committed, each worker's first increment read
// before any writes. PostgreSQL and MariaDB let naive's read-modify-write lose increments there
// (Hermitage's P4); SQLite's transactions are all serializable (what naive does there is the
// database's: only the count is checked). `atomic` holds everywhere, and the results carry the keys
// every workload's carry.
async fn the_counter_at_a_level_runs_as_a_workload(test: TestDb) {
    let app = spawn_app(&test).await;
    let request = json!({"kind": "lab", "workload": "counter", "isolation": "read-committed",
        "strategies": ["naive", "atomic"], "workers": 4, "increments": 3, "force_race": true});
    let run = finished(&app, &start(&app, request).await).await;
    assert_eq!(run["state"], "finished", "naive is not meant to hold: {run}");
    assert_eq!(
        (&run["request"]["workload"], &run["request"]["isolation"]),
        (&json!("counter"), &json!("read-committed"))
    );
    let results = run["results"].as_array().expect("results");
    let names: Vec<&str> = results.iter().filter_map(|r| r["strategy"].as_str()).collect();
    assert_eq!(names, ["naive", "atomic"], "{run}");
    for result in results {
        assert_eq!((&result["workload"], &result["isolation"]), (&json!("counter"), &json!("read-committed")));
        assert_eq!(result["invariant"]["name"], "no-lost-update", "{result}");
        let counted: u64 =
            ["acknowledged", "refused", "failed", "in_doubt"].iter().filter_map(|k| result[*k].as_u64()).sum();
        assert_eq!(counted, 12, "every increment counted once: {result}");
        assert!(result["trace"]["events"].as_array().is_some_and(|e| !e.is_empty()), "a small lab is traced: {result}");
    }
    let (naive, atomic) = (&results[0], &results[1]);
    assert_eq!((&atomic["safe"], &atomic["invariant"]["held"]), (&json!(true), &json!(true)), "{atomic}");
    assert_eq!(atomic["acknowledged"], 12, "{atomic}");
    assert_eq!(naive["safe"], false, "{naive}");
    if test.backend != Backend::Sqlite {
        assert_eq!(naive["invariant"]["held"], false, "naive loses at read committed under the race: {naive}");
        assert!(naive["invariant"]["violations"].as_u64() >= Some(1), "{naive}");
        assert!(naive["trace"]["marked"].as_array().is_some_and(|m| m.iter().any(|m| m["role"] == "broke")), "{naive}");
    }
    // Progress: the workload's counts, refusals included; no counter trace beside the results.
    let progress = run["progress"].as_array().expect("progress");
    for (cell, result) in progress.iter().zip(results) {
        for key in ["strategy", "workers", "acknowledged", "refused", "failed", "in_doubt"] {
            assert_eq!(cell[key], result[key], "{key}: {cell} vs {result}");
        }
    }
    assert_eq!(run["traces"], json!([]));
}

// `rooms` and `slots` size a booking lab's rows: one room of two slots, 12 bookings by 4 workers, so
// `unique` books each of the two slots once and refuses the other ten (with the default 4 rooms x 64
// slots it would refuse few or none).
async fn a_booking_lab_books_the_rooms_and_slots_it_is_given(test: TestDb) {
    let app = spawn_app(&test).await;
    let request = json!({"kind": "lab", "workload": "booking", "strategies": ["unique"], "workers": 4,
        "increments": 3, "rooms": 1, "slots": 2});
    let run = finished(&app, &start(&app, request).await).await;
    assert_eq!(run["state"], "finished", "{run}");
    assert_eq!((&run["request"]["rooms"], &run["request"]["slots"]), (&json!(1), &json!(2)), "{run}");
    let result = &run["results"][0];
    assert_eq!(result["sizes"], json!({"rooms": 1, "slots": 2}), "{result}");
    assert_eq!(result["invariant"]["held"], true, "{result}");
    assert_eq!((result["acknowledged"].as_u64(), result["refused"].as_u64()), (Some(2), Some(10)), "{result}");
    // The defaults, shown back.
    let request =
        json!({"kind": "lab", "workload": "booking", "strategies": ["unique"], "workers": 1, "increments": 1});
    let run = finished(&app, &start(&app, request).await).await;
    assert_eq!(run["results"][0]["sizes"], json!({"rooms": 4, "slots": 64}), "{run}");
}

// A safe strategy whose invariant breaks fails the run, as `racelab lab` fails for it: here a trigger of
// the test's takes a second unit beside each of `conditional`'s three sales (10 in stock), so 3 units
// left with no sale. Naive's broken invariant (it is not meant to hold) is shown, not a failure: every
// experiment runs and is kept, and the problem names conditional alone.
async fn a_safe_strategy_whose_invariant_breaks_fails_the_run(test: TestDb) {
    let app = spawn_app(&test).await;
    take_a_unit_beside_each_sale(&test).await;
    let request = json!({"kind": "lab", "workload": "stock", "strategies": ["conditional", "naive"], "workers": 1,
        "increments": 3, "stock": 10});
    let run = finished(&app, &start(&app, request).await).await;
    assert_eq!(run["state"], "failed", "{run}");
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "the run went on after the broken invariant: {run}");
    let conditional = &results[0];
    assert_eq!((&conditional["safe"], &conditional["acknowledged"]), (&json!(true), &json!(3)), "{conditional}");
    assert_eq!(conditional["invariant"]["held"], false, "{conditional}");
    assert_eq!(conditional["invariant"]["violations"], 3, "{conditional}");
    assert_eq!((&results[1]["safe"], &results[1]["invariant"]["held"]), (&json!(false), &json!(false)), "{run}");
    let error = &run["error"];
    assert_eq!(error["type"], "urn:racelab:problem:invariant-broken", "{run}");
    let detail = error["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("stock conditional (3 units left the stock with no sale)"), "{detail}");
    assert!(!detail.contains("naive"), "naive is not meant to hold: {detail}");
}

// A workload's settings are its own: the strategies of another workload, an unknown workload or
// level, a size out of range, a bench or anomalies of a workload, the counter given a workload's
// settings: each a 422 naming the member.
async fn bad_workload_bodies_are_refused_naming_the_member(test: TestDb) {
    let app = spawn_app(&test).await;
    for (body, member) in [
        (json!({"kind": "lab", "workload": "stonks"}), "workload"),
        (json!({"kind": "lab", "workload": 3}), "workload"),
        (json!({"kind": "bench", "workload": "stock"}), "workload"),
        (json!({"kind": "anomalies", "workload": "stock"}), "workload"),
        (json!({"kind": "lab", "workload": "stock", "strategies": ["atomic"]}), "strategies"),
        (json!({"kind": "lab", "workload": "transfer", "strategies": ["check-constraint"]}), "strategies"),
        (json!({"kind": "lab", "strategies": ["check-constraint"]}), "strategies"),
        (json!({"kind": "lab", "workload": "stock", "isolation": "snapshot"}), "isolation"),
        (json!({"kind": "bench", "isolation": "serializable"}), "isolation"),
        (json!({"kind": "lab", "isolation": "read-committed", "stock": 3}), "stock"),
        (json!({"kind": "lab", "workload": "counter", "isolation": "read-committed", "post": 1}), "post"),
        (json!({"kind": "lab", "workload": "stock", "stock": -1}), "stock"),
        (json!({"kind": "lab", "workload": "transfer", "accounts": 1}), "accounts"),
        (json!({"kind": "lab", "workload": "oncall", "doctors": 0}), "doctors"),
        (json!({"kind": "lab", "jobs": 4}), "jobs"),
        (json!({"kind": "lab", "workload": "booking", "rooms": 0}), "rooms"),
        (json!({"kind": "lab", "workload": "booking", "rooms": 10_001}), "rooms"),
        (json!({"kind": "lab", "workload": "booking", "slots": 1025}), "slots"),
        (json!({"kind": "lab", "workload": "booking", "slots": "8"}), "slots"),
        (json!({"kind": "lab", "slots": 8}), "slots"),
        (json!({"kind": "lab", "workload": "stock", "post": 1}), "post"),
    ] {
        let answer = post(&app, &body).await;
        let problem = assert_problem(&answer, 422);
        assert_eq!(problem["invalid_params"][0]["name"], member, "{body}: {}", answer.text);
    }
    let answer = post(&app, &json!({"kind": "lab", "workload": "stock", "strategies": ["atomic"]})).await;
    let reason = answer.text;
    assert!(reason.contains("not a stock strategy") && reason.contains("conditional"), "{reason}");
}

// What the page's picker reads: every workload, its invariant in a sentence, its strategies.
async fn the_workloads_are_listed_with_their_invariants(test: TestDb) {
    let app = spawn_app(&test).await;
    let listed = app.ok("/workloads").await;
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), Workload::ALL.len());
    for (view, workload) in listed.iter().zip(Workload::ALL) {
        assert_eq!(view["name"], workload.name());
        assert_eq!(view["invariant"], workload.invariant());
        assert!(view["sentence"].as_str().is_some_and(|s| !s.is_empty()), "{view}");
        let strategies = view["strategies"].as_array().expect("strategies");
        assert!(!strategies.is_empty(), "{view}");
        for strategy in strategies {
            let name = strategy["name"].as_str().unwrap_or_default();
            assert_eq!(strategy["safe"].as_bool(), workload.is_safe(name), "{workload}: {strategy}");
        }
    }
}

on_every_backend!(
    a_safe_strategy_whose_invariant_breaks_fails_the_run,
    the_counter_at_a_level_runs_as_a_workload,
    a_booking_lab_books_the_rooms_and_slots_it_is_given,
    a_stock_lab_shows_naive_overselling_and_the_safe_strategies_holding,
    bad_workload_bodies_are_refused_naming_the_member,
    the_workloads_are_listed_with_their_invariants,
);
