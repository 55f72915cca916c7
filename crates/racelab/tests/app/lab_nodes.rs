//! `racelab lab` over several database URLs (the nodes of one cluster; here two pools on one server,
//! which the engine cannot tell from two nodes), on a chosen post, and when the database goes away
//! mid-run: the table or JSON of what was done still comes, and the command ends non-zero.

use std::time::{Duration, Instant};

use racelab_testkit::proxy::TcpProxy;
use racelab_testkit::{TestDb, on_server_backends};
use serde_json::Value;

use crate::support::binary::{racelab, run};

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

// Workers spread round-robin over two URLs; one accounting: nothing of the experiment's own nodes
// counts as foreign, and each node's share is reported.
async fn one_experiment_spreads_over_several_urls(test: TestDb) {
    let mut args = strings(&["lab", "-s", "atomic,optimistic,naive", "-w", "5", "-n", "20", "--json"]);
    args.extend(["--database-url".to_owned(), test.url.clone(), "--database-url".to_owned(), test.url.clone()]);
    let output = run(args).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(report["database"]["nodes"].as_array().map(Vec::len), Some(2), "{report}");
    for result in report["results"].as_array().expect("results") {
        assert_eq!(result["foreign_writes"], 0, "{result}");
        let nodes = result["nodes"].as_array().expect("per-node figures");
        let workers: Vec<u64> = nodes.iter().map(|n| n["workers"].as_u64().unwrap()).collect();
        assert_eq!(workers, [3, 2], "{result}");
        let acknowledged: u64 = nodes.iter().map(|n| n["acknowledged"].as_u64().unwrap()).sum();
        assert_eq!(Some(acknowledged), result["acknowledged"].as_u64(), "{result}");
        if result["strategy"] != "naive" {
            assert_eq!((result["lost"].as_i64(), result["actual"].as_i64()), (Some(0), Some(100)), "{result}");
        }
    }

    // The table names each node, with its share.
    let mut args = strings(&["lab", "-s", "atomic", "-w", "4", "-n", "5"]);
    args.extend(["--database-url".to_owned(), format!("{},{}", test.url, test.url)]);
    let output = run(args).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("2 nodes of ") && stdout.contains("per node"), "{stdout}");
    // Every line fits 80 columns, but the URLs themselves (a test database's name is long).
    assert!(stdout.lines().filter(|l| !l.contains("://")).all(|l| l.chars().count() <= 80), "{stdout}");
}

// `--post` runs every strategy on the same row, one after the other: the row ends with all of them.
async fn a_chosen_post_is_shared_by_the_runs(test: TestDb) {
    let mut args = strings(&["lab", "-s", "atomic,pessimistic", "-w", "2", "-n", "5", "--post", "42", "--json"]);
    args.extend(["--database-url".to_owned(), test.url.clone()]);
    let output = run(args).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let results = report["results"].as_array().expect("results");
    assert!(results.iter().all(|r| r["post"] == 42), "{report}");
    assert_eq!((results[0]["like_before"].as_i64(), results[1]["like_before"].as_i64()), (Some(0), Some(10)));
    assert_eq!(results[1]["like_after"], 20, "{report}");
}

// The database goes away while the lab runs: the JSON of what was done comes out (acknowledged, failed
// and in doubt add up, the counter unknown), and the command ends non-zero saying why.
async fn a_database_that_dies_mid_run_still_gets_its_report(test: TestDb) {
    let (upstream, rewrite) = TcpProxy::route(&test.url);
    let proxy = TcpProxy::start(upstream).await;
    let url = rewrite(proxy.port);
    let args = strings(&["lab", "-s", "atomic", "-w", "4", "-n", "5000", "--json", "--database-url", &url]);
    let lab = tokio::task::spawn_blocking(move || racelab(&args));

    // Cut once some increment must have been acknowledged (observed on the test's own connection, not
    // through the proxy). A worker sends its next increment only after its last one was answered, so a
    // row above the 4 workers' count holds an answered increment; a row of 1 to 4 may be writes whose
    // answers are still on their way, and cutting then could leave nothing acknowledged.
    let db = test.connect().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while written(&db).await <= 4 {
        if lab.is_finished() {
            let output = lab.await.expect("thread");
            panic!("the lab ended before the cut: {}", String::from_utf8_lossy(&output.stderr));
        }
        assert!(Instant::now() < deadline, "the lab wrote nothing within 30 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proxy.cut();

    let output = tokio::time::timeout(Duration::from_secs(60), lab).await.expect("lab ends").expect("thread");
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the database went away during atomic"), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("the JSON of what was done");
    let result = &report["results"][0];
    let n = |key: &str| result[key].as_u64().unwrap_or_else(|| panic!("no {key}: {result}"));
    assert_eq!(n("acknowledged") + n("failed") + n("in_doubt"), 20_000, "{result}");
    assert!(n("acknowledged") > 0 && n("acknowledged") < 20_000, "{result}");
    assert!(result["actual"].is_null() && result["counter_error"].is_string(), "{result}");
    let row = written(&db).await as u64;
    assert!(n("acknowledged") <= row && row <= n("acknowledged") + n("in_doubt"), "row {row}: {result}");
}

/// The largest counter in the test's database (the lab's fresh post).
async fn written(db: &racelab_core::Database) -> i64 {
    let mut session = db.session().await.expect("a session");
    let mut most = 0;
    for pk in 1..=3 {
        if let Ok(counter) = session.read_settled(pk).await {
            most = most.max(counter.like);
        }
    }
    most
}

on_server_backends!(
    one_experiment_spreads_over_several_urls,
    a_chosen_post_is_shared_by_the_runs,
    a_database_that_dies_mid_run_still_gets_its_report
);
