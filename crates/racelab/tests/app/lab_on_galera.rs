//! `racelab lab` and `racelab bench` across the three nodes of a real MariaDB Galera cluster, as a user
//! runs them: one accounting for the whole cluster with each node's share, every safe strategy losing
//! nothing, naive's loss counted; and, with node 3 killed mid-run, the report still printed and the
//! proof holding on the survivors' row. (The engine's own tests are in `crates/core/tests/engine/galera.rs`;
//! these check what the binary prints.)

use std::time::{Duration, Instant};

use racelab_testkit::galera::{GaleraDb, PrivateCluster};
use serde_json::Value;

use crate::support::binary::{racelab, run};

/// `args` then `--database-url` with the three nodes, comma-separated.
fn across(test: &GaleraDb, args: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    args.extend(["--database-url".to_owned(), test.urls.join(",")]);
    args
}

fn number(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or_else(|| panic!("no `{key}`: {value}"))
}

/// Each node's figures add up to the whole, and each node's workers made all their attempts.
fn assert_nodes_add_up(result: &Value) {
    let nodes = result["nodes"].as_array().unwrap_or_else(|| panic!("no per-node figures: {result}"));
    assert_eq!(nodes.len(), 3, "{result}");
    for key in ["acknowledged", "failed", "in_doubt"] {
        assert_eq!(nodes.iter().map(|n| number(n, key)).sum::<u64>(), number(result, key), "{key}: {result}");
    }
    assert_eq!(
        number(result, "acknowledged") + number(result, "failed") + number(result, "in_doubt"),
        number(result, "expected")
    );
}

// Every strategy across three nodes, two workers on each: the safe ones lose nothing of what they
// acknowledged (the counter read after every node applied every write), naive's loss is counted as
// acknowledged - actual, and the table names the nodes and each one's share.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lab_across_three_nodes_proves_every_safe_strategy_and_counts_naives_loss() {
    let test = GaleraDb::create().await;
    let output = run(across(&test, &["lab", "-w", "6", "-n", "20", "--force-race", "--json"])).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let mut results = report["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), 9, "every strategy: {report}");
    // The lock modes that fail fast, with the retry a neighbour's refusal needs on a cluster.
    let modes = ["lab", "-s", "pessimistic-nowait,pessimistic-skip-locked", "--lock-retries", "10000"];
    let output = run(across(&test, &[&modes[..], &["-w", "6", "-n", "20", "--json"]].concat())).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    results.extend(report["results"].as_array().expect("results").iter().cloned());
    for result in &results {
        assert_nodes_add_up(result);
        assert_eq!(result["foreign_writes"], 0, "nothing of the experiment's own nodes is foreign: {result}");
        let actual = result["actual"].as_i64().unwrap_or_else(|| panic!("counter read: {result}"));
        let acknowledged = number(result, "acknowledged") as i64;
        match result["strategy"].as_str().unwrap() {
            "naive" => {
                assert_eq!(result["lost"].as_i64(), Some(acknowledged - actual), "{result}");
                assert!(acknowledged > actual, "naive with the race forced lost nothing across nodes: {result}");
            }
            // Drops increments (1213, a stale version) without retrying, but loses none it acknowledged.
            "versioned-no-retry" => assert_eq!((result["lost"].as_i64(), actual), (Some(0), acknowledged), "{result}"),
            _ => {
                assert_eq!((result["lost"].as_i64(), actual), (Some(0), 120), "{result}");
                assert_eq!((number(result, "failed"), number(result, "in_doubt")), (0, 0), "{result}");
            }
        }
    }

    // The table: the nodes named in the header, a per-node section, and 80 columns (URLs aside).
    let output = run(across(&test, &["lab", "-s", "atomic,sharded", "-w", "3", "-n", "10"])).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("on 3 nodes of MariaDB") && stdout.contains("per node"), "{stdout}");
    assert!(stdout.lines().filter(|l| !l.contains("://")).all(|l| l.chars().count() <= 80), "{stdout}");
}

// The bench across three nodes: each cell's JSON has the three nodes' figures, and every acknowledged
// increment is in the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_across_three_nodes_reports_each_node() {
    let test = GaleraDb::create().await;
    let json = std::env::temp_dir().join(format!("racelab-galera-bench-{}.json", uuid::Uuid::new_v4().simple()));
    let mut args = across(&test, &["bench", "-s", "atomic,sharded", "-w", "3,6", "-d", "1s", "--warmup", "0s"]);
    args.extend(["--json".to_owned(), json.display().to_string()]);
    let output = run(args).await;
    let written = std::fs::read(&json);
    let _ = std::fs::remove_file(&json);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&written.expect("the JSON file")).expect("JSON");
    let cells = report["cells"].as_array().unwrap_or_else(|| panic!("no cells: {report}"));
    assert_eq!(cells.len(), 4, "{report}");
    for cell in cells {
        assert!(number(cell, "acknowledged") > 0, "{cell}");
        assert_eq!(
            (cell["lost"].as_i64(), cell["actual"].as_u64()),
            (Some(0), Some(number(cell, "acknowledged"))),
            "{cell}"
        );
        let nodes = cell["nodes"].as_array().unwrap_or_else(|| panic!("no per-node figures: {cell}"));
        assert_eq!(nodes.len(), 3, "{cell}");
        assert_eq!(
            nodes.iter().map(|n| number(n, "acknowledged")).sum::<u64>(),
            number(cell, "acknowledged"),
            "{cell}"
        );
    }
}

// Node 3 is killed while the lab runs atomic across the three nodes. The survivors' workers finish;
// node 3's stop, their increments failed or in doubt; the lab prints the JSON of the whole run (the
// counter read on a survivor) and exits 1; the row holds every acknowledged increment and at most the
// in-doubt ones more. After the rejoin, node 3 holds the same counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lab_with_a_node_killed_mid_run_prints_the_whole_accounting() {
    const POST: i64 = 7;
    let cluster = PrivateCluster::take().await;
    let test = cluster.database().await;
    // The survivors stall while the cluster evicts the dead node: a worker queued behind its
    // neighbour's stalled statement must outlast that rather than time out on the row lock.
    let args = across(
        &test,
        &[
            "lab",
            "-s",
            "atomic",
            "-w",
            "6",
            "-n",
            "3000",
            "--post",
            &POST.to_string(),
            "--lock-timeout",
            "30s",
            "--json",
        ],
    );
    let lab = tokio::task::spawn_blocking(move || racelab(&args));

    let deadline = Instant::now() + Duration::from_secs(60);
    while like_on_node_1(&test, POST).await < 300 {
        if lab.is_finished() {
            let output = lab.await.expect("thread");
            panic!("the lab ended before the kill: {}", String::from_utf8_lossy(&output.stderr));
        }
        assert!(Instant::now() < deadline, "the lab made no progress within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill(2).await;

    let output = tokio::time::timeout(Duration::from_secs(120), lab).await.expect("lab ends").expect("thread");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let result = &report["results"][0];
    assert_nodes_add_up(result);
    let nodes = result["nodes"].as_array().unwrap();
    for survivor in &nodes[..2] {
        assert_eq!(number(survivor, "acknowledged"), 2 * 3000, "a survivor did not finish: {result}");
    }
    assert!(number(&nodes[2], "failed") + number(&nodes[2], "in_doubt") > 0, "node 3's death unseen: {result}");
    let (acknowledged, in_doubt) = (number(result, "acknowledged"), number(result, "in_doubt"));
    let row = like_on_node_1(&test, POST).await as u64;
    assert!(acknowledged <= row && row <= acknowledged + in_doubt, "row {row}: {result}");
    assert_eq!(result["actual"].as_u64(), Some(row), "the counter was read on a survivor: {result}");

    cluster.rejoin(2).await;
    assert_eq!(test.synced_like(2, POST).await as u64, row, "node 3 after its rejoin");
}

/// `like` of post `pk` on node 1 once it has applied every earlier write; 0 until the lab has created
/// its table and the post.
async fn like_on_node_1(test: &GaleraDb, pk: i64) -> i64 {
    let mut conn = test.synced_connection(0).await;
    let like = sqlx::query_scalar("SELECT `like` FROM posts WHERE pk = ?").bind(pk).fetch_optional(&mut conn).await;
    match like {
        Ok(like) => like.unwrap_or(0),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42S02") => 0,
        Err(e) => panic!("reading post {pk} on node 1: {e}"),
    }
}
