//! `racelab lab --workload ...` as a user runs it: the JSON of a workload carries its counts and its
//! invariant, the unsafe strategy is seen breaking it, and bad input is named.

use racelab_testkit::{TestDb, on_every_backend, on_server_backends};
use serde_json::Value;

use crate::support::binary::{run, text};

async fn lab_workload_stock_json_carries_the_counts_and_the_invariant(test: TestDb) {
    let args = ["lab", "--workload", "stock", "-w", "4", "-n", "3", "--force-race", "--json", "--database-url"];
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.push(test.url.clone());
    let output = run(args).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!((report["workers"].as_u64(), report["operations"].as_u64()), (Some(4), Some(3)), "{report}");
    let workload = &report["workloads"][0];
    assert_eq!(workload["workload"], "stock");
    let results = workload["results"].as_array().expect("results");
    let names: Vec<&str> = results.iter().filter_map(|r| r["strategy"].as_str()).collect();
    assert_eq!(names, ["naive", "conditional", "pessimistic", "optimistic", "serializable", "check-constraint"]);
    for result in results {
        for key in ["workload", "strategy", "isolation", "acknowledged", "refused", "failed", "in_doubt", "retries"] {
            assert!(result.get(key).is_some(), "{key} missing in {result}");
        }
        assert!(result["errors"].is_object(), "{result}");
        let invariant = &result["invariant"];
        assert_eq!(invariant["name"], "no-oversell", "{result}");
        assert!(invariant["detail"].is_string(), "{result}");
        let n = |k: &str| result[k].as_u64().unwrap_or_else(|| panic!("{k} in {result}"));
        assert_eq!(n("acknowledged") + n("refused") + n("failed") + n("in_doubt"), 12, "{result}");
        if result["strategy"] == "naive" {
            // Four buyers read the stock of 6 before any writes: at least three units oversold.
            assert_eq!(invariant["held"], false, "{result}");
            assert!(invariant["violations"].as_u64() >= Some(3), "{result}");
        } else {
            assert_eq!((invariant["held"].as_bool(), invariant["violations"].as_u64()), (Some(true), Some(0)));
            assert_eq!((n("acknowledged"), n("refused")), (6, 6), "{result}");
        }
    }
}

on_every_backend!(lab_workload_stock_json_carries_the_counts_and_the_invariant);

// A workload over two URLs (two pools on one server, which the engine cannot tell from two nodes):
// the workers spread round-robin, each node's share in the JSON and in a table of its own.
async fn a_workload_spreads_over_several_urls(test: TestDb) {
    let urls = format!("{},{}", test.url, test.url);
    let args = ["lab", "--workload", "transfer", "-s", "pessimistic,conditional", "-w", "5", "-n", "4"];
    let mut json: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    json.extend(["--json".to_owned(), "--database-url".to_owned(), urls.clone()]);
    let output = run(json).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    for result in report["workloads"][0]["results"].as_array().expect("results") {
        let nodes = result["nodes"].as_array().expect("per-node figures");
        let workers: Vec<u64> = nodes.iter().filter_map(|n| n["workers"].as_u64()).collect();
        assert_eq!(workers, [3, 2], "{result}");
        let acknowledged: u64 = nodes.iter().filter_map(|n| n["acknowledged"].as_u64()).sum();
        assert_eq!(Some(acknowledged), result["acknowledged"].as_u64(), "{result}");
        assert_eq!(result["invariant"]["held"], true, "{result}");
    }

    let mut table: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    table.extend(["--database-url".to_owned(), urls]);
    let output = run(table).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("per node (numbered as in the header):"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("conditional") && l.split_whitespace().nth(1) == Some("2")),
        "{stdout}"
    );
}

on_server_backends!(a_workload_spreads_over_several_urls);

// At an isolation level the counter runs through the workloads' runner: its JSON carries the keys
// every workload's does, and its invariant is the counter's own proof.
async fn lab_counter_at_an_isolation_level_runs_as_a_workload(test: TestDb) {
    let args = ["lab", "--workload", "counter", "--isolation", "repeatable-read", "-s", "naive,atomic", "-w", "4"];
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.extend(["-n", "3", "--json", "--database-url"].map(str::to_owned));
    args.push(test.url.clone());
    let output = run(args).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(report["isolation"], "repeatable-read", "{report}");
    let workload = &report["workloads"][0];
    assert_eq!((&workload["workload"], &workload["invariant"]), (&"counter".into(), &"no-lost-update".into()));
    let results = workload["results"].as_array().expect("results");
    let names: Vec<&str> = results.iter().filter_map(|r| r["strategy"].as_str()).collect();
    assert_eq!(names, ["naive", "atomic"]);
    for result in results {
        for key in ["workload", "strategy", "isolation", "acknowledged", "refused", "failed", "in_doubt", "retries"] {
            assert!(result.get(key).is_some(), "{key} missing in {result}");
        }
        assert_eq!((&result["workload"], &result["isolation"]), (&"counter".into(), &"repeatable-read".into()));
        assert!(result["errors"].is_object(), "{result}");
        let invariant = &result["invariant"];
        assert_eq!(invariant["name"], "no-lost-update", "{result}");
        assert!(invariant["held"].is_boolean() && invariant["detail"].is_string(), "{result}");
        let n = |k: &str| result[k].as_u64().unwrap_or_else(|| panic!("{k} in {result}"));
        assert_eq!(n("acknowledged") + n("refused") + n("failed") + n("in_doubt"), 12, "{result}");
    }
    // One statement: every increment acknowledged and in the counter, at any level.
    let atomic = &results[1];
    assert_eq!((atomic["acknowledged"].as_u64(), &atomic["invariant"]["held"]), (Some(12), &true.into()), "{atomic}");
}

on_every_backend!(lab_counter_at_an_isolation_level_runs_as_a_workload);

#[tokio::test]
async fn workload_flags_are_checked_by_name() {
    let cases: [(&[&str], &str); 8] = [
        (&["lab", "--workload", "stock", "-w", "100", "-n", "1000000"], "--workers x --increments must be at most"),
        (&["lab", "--workload", "stock", "--post", "3"], "--post applies to the counter"),
        (&["lab", "--workload", "bank"], "unknown workload `bank`; expected one of: counter, stock, transfer"),
        (&["lab", "--workload", "stock", "-s", "atomic"], "unknown stock strategy `atomic`; expected one of: naive,"),
        (&["lab", "--isolation", "serializable"], "--isolation runs the workloads' runner: add --workload counter"),
        (&["lab", "--workload", "counter", "--isolation", "serializable", "--post", "3"], "makes a fresh post"),
        (&["lab", "--workload", "transfer", "--isolation", "snapshot"], "unknown isolation level `snapshot`"),
        (&["lab", "--workload", "all", "-s", "naive"], "--workload all runs every workload's strategies"),
    ];
    for (args, expected) in cases {
        let output = run(args.iter().map(|a| a.to_string()).collect()).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output.stderr));
        assert!(text(&output.stderr).contains(expected), "{args:?}: {}", text(&output.stderr));
    }
}

/// `--workload all`: one table per workload, the counter's first and as it always was, then each
/// workload's with its invariant; the JSON has every workload's results.
#[test]
fn lab_workload_all_runs_every_workload() {
    let dir = crate::support::scratch::ScratchDir::new("lab-workloads");
    let racelab = |args: &[&str]| {
        crate::support::binary::command().args(args).current_dir(&*dir).output().expect("the racelab binary runs")
    };
    let output = racelab(&["lab", "--workload", "all", "-w", "2", "-n", "2", "--force-race"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    for title in [
        "counter: invariant no-lost-update",
        "stock: invariant no-oversell",
        "transfer: invariant money-conserved",
        "oncall: invariant someone-on-call",
        "booking: invariant no-double-booking",
        "queue: invariant exactly-once",
    ] {
        assert!(stdout.contains(title), "{title} missing in:\n{stdout}");
    }
    assert!(stdout.contains("broken (unsafe, as expected): oversold"), "{stdout}");
    assert!(!stdout.contains("VIOLATED"), "{stdout}");
    // The SQLite file's path is as long as the temporary folder makes it; every other line fits.
    let wide = stdout.lines().filter(|l| !l.starts_with("the SQLite file ")).find(|l| l.chars().count() > 80);
    assert_eq!(wide, None, "wider than 80 columns:\n{stdout}");

    let output = racelab(&["lab", "--workload", "all", "-w", "2", "-n", "2", "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let workloads: Vec<&str> =
        report["workloads"].as_array().expect("workloads").iter().filter_map(|w| w["workload"].as_str()).collect();
    assert_eq!(workloads, ["counter", "stock", "transfer", "oncall", "booking", "queue"]);
    assert_eq!(report["workloads"][0]["results"][0]["strategy"], "naive", "{report}");
    assert!(report["workloads"][0]["results"][0].get("lost").is_some(), "the counter's own outcome: {report}");
}
