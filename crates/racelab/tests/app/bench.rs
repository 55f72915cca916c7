//! `racelab bench` through its public surface, the binary: a short sweep on every backend writes JSON,
//! CSV and an SVG chart that agree with each other, and bad input is refused (exit 2) before anything
//! connects.
//!
//! ```sh
//! cargo nextest run -p racelab --test app bench::
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use racelab_core::Backend;
use racelab_testkit::{TestDb, on_every_backend, on_server_backends};
use serde_json::Value;

use crate::support::binary::{command, text};
use crate::support::scratch::ScratchDir;
use racelab_testkit::limited_account;

/// A URL nothing listens on: a command that got as far as connecting fails with exit 1, not 2.
const UNREACHABLE: &str = "postgres://racelab@127.0.0.1:9/nothing";

async fn racelab(args: &[&str]) -> Output {
    tokio::process::Command::from(command()).args(args).output().await.expect("the racelab binary runs")
}

/// A directory of its own for one test's output files, removed at the end.
struct OutDir(ScratchDir);

impl OutDir {
    fn new() -> Self {
        Self(ScratchDir::new("bench"))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.file(name).display().to_string()
    }

    /// `racelab bench` on `url` with `sweep` (strategies, workers, timings), writing bench.json,
    /// bench.csv and bench.svg here.
    async fn bench(&self, url: &str, sweep: &[&str]) -> Output {
        let (json, csv, chart) = (self.arg("bench.json"), self.arg("bench.csv"), self.arg("bench.svg"));
        let mut args = vec!["bench", "--database-url", url];
        args.extend_from_slice(sweep);
        args.extend(["--json", &json, "--csv", &csv, "--chart", &chart]);
        racelab(&args).await
    }
}

const STRATEGIES: [&str; 2] = ["atomic", "pessimistic"];
const WORKERS: [u64; 2] = [1, 2];

// Two strategies x two worker counts x 1 s: every cell in the JSON with the fields the issue promises,
// the invariant held, the CSV has the same cells, and the chart has one line per strategy.
async fn a_short_bench_writes_json_csv_and_a_chart(test: TestDb) {
    let out = OutDir::new();
    let strategies = STRATEGIES.join(",");
    let sweep = ["--strategy", &strategies, "--workers", "2,1", "--duration", "1s", "--warmup", "200ms"];
    let output = out.bench(&test.url, &sweep).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "bench failed on {}:\n{stdout}\n{stderr}", test.backend);

    // Not a terminal: a plain line per cell on stderr, within 80 columns ("1 worker", not "1 workers"),
    // and the table on stdout.
    let progress: Vec<&str> = stderr.lines().filter(|l| l.ends_with(" ok")).collect();
    assert_eq!(progress.len(), 4, "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.chars().count() > 80).collect::<Vec<_>>(), Vec::<&str>::new(), "{stderr}");
    assert_eq!(progress.iter().filter(|l| l.contains(" 1 worker ")).count(), 2, "{stderr}");
    assert_eq!(progress.iter().filter(|l| l.contains(" 2 workers ")).count(), 2, "{stderr}");
    // The table fits 80 columns (the first line names the URL, as long as it is): a line per cell,
    // every acknowledged increment in the row.
    assert!(stdout.lines().skip(1).all(|l| l.chars().count() <= 80), "{stdout}");
    let cells: Vec<&str> = stdout.lines().filter(|l| STRATEGIES.iter().any(|s| l.starts_with(s))).collect();
    assert_eq!(cells.len(), 4, "{stdout}");
    assert!(cells.iter().all(|l| l.ends_with(" yes")), "{stdout}");

    let report = check_json(&out.file("bench.json"), test.backend);
    check_csv(&out.file("bench.csv"), &report);
    check_chart(&out.file("bench.svg"));
}

fn check_json(path: &Path, backend: Backend) -> Value {
    let report: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("JSON written")).expect("JSON");
    assert_eq!(report["database"], backend.as_str(), "{report:#}");
    assert!(!report["version"].as_str().unwrap_or_default().is_empty(), "{report:#}");
    assert_eq!(report["duration_s"], 1.0, "{report:#}");
    let cells = report["cells"].as_array().expect("cells");
    let mut seen = BTreeSet::new();
    for cell in cells {
        for key in ["acknowledged", "actual", "lost", "failed", "retries", "throughput_per_s"] {
            assert!(cell[key].is_number(), "{key} missing in {cell:#}");
        }
        for key in ["p50", "p95", "p99", "max"] {
            assert!(cell["latency_ms"][key].as_f64().is_some_and(|v| v > 0.0), "latency {key} in {cell:#}");
        }
        assert!(cell["errors"].is_object(), "{cell:#}");
        assert!(cell["throughput_per_s"].as_f64().is_some_and(|v| v > 0.0), "{cell:#}");
        assert_eq!(cell["actual"], cell["acknowledged"], "the invariant, in {cell:#}");
        assert_eq!(cell["lost"], 0, "{cell:#}");
        seen.insert((cell["strategy"].as_str().expect("strategy").to_owned(), cell["workers"].as_u64().expect("n")));
    }
    let expected: BTreeSet<_> =
        STRATEGIES.iter().flat_map(|s| WORKERS.iter().map(move |w| (s.to_string(), *w))).collect();
    assert_eq!(seen, expected, "one cell per strategy and worker count");
    assert_eq!(cells.len(), expected.len());
    report
}

fn check_csv(path: &Path, report: &Value) {
    let csv = std::fs::read_to_string(path).expect("CSV written");
    let lines: Vec<&str> = csv.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(&header[..3], ["strategy", "workers", "throughput_per_s"], "{csv}");
    assert_eq!(lines.len(), 1 + report["cells"].as_array().map_or(0, Vec::len), "{csv}");
    for (line, cell) in lines[1..].iter().zip(report["cells"].as_array().into_iter().flatten()) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), header.len(), "{line}");
        assert_eq!(fields[0], cell["strategy"], "{line}");
        assert_eq!(fields[header.iter().position(|h| *h == "acknowledged").unwrap()], cell["acknowledged"].to_string());
        assert_eq!(fields[header.iter().position(|h| *h == "invariant_holds").unwrap()], "true", "{line}");
    }
}

/// The SVG parses as XML; its legend names each strategy, and each strategy's line has a colour of its
/// own (drawn in both panels and the legend).
fn check_chart(path: &Path) {
    let svg = std::fs::read_to_string(path).expect("SVG written");
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("the chart is not XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).collect();
    for strategy in STRATEGIES {
        assert_eq!(texts.iter().filter(|t| t.trim() == strategy).count(), 1, "legend entry {strategy}: {texts:?}");
    }
    assert!(texts.iter().any(|t| t.contains("Throughput")) && texts.iter().any(|t| t.contains("p99")), "{texts:?}");
    let mut lines_by_colour = std::collections::BTreeMap::<&str, usize>::new();
    for line in doc.descendants().filter(|n| n.has_tag_name("polyline")) {
        let colour = line.attribute("stroke").unwrap_or("none");
        if colour != "#000000" && colour != "none" {
            *lines_by_colour.entry(colour).or_default() += 1;
        }
    }
    assert_eq!(lines_by_colour.len(), STRATEGIES.len(), "one colour per strategy: {lines_by_colour:?}");
    assert!(lines_by_colour.values().all(|n| *n == 3), "two panels and the legend: {lines_by_colour:?}");
}

on_every_backend!(a_short_bench_writes_json_csv_and_a_chart);

/// An account that may hold 3 connections: the 1-worker cells run, the 8-worker cell cannot. The bench
/// names that cell and the server's refusal, and its JSON, CSV and chart hold the cells finished
/// before it (and the JSON the failure).
async fn a_cell_that_cannot_run_keeps_the_cells_before_it(test: TestDb) {
    let account = limited_account::LimitedAccount::create(&test, 3).await;
    let out = OutDir::new();
    let sweep = ["--strategy", "atomic,pessimistic", "--workers", "1,8", "--duration", "300ms", "--warmup", "0s"];
    let output = out.bench(&account.url, &sweep).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let refusal = match test.backend {
        Backend::Postgres => "too many connections for role",
        _ => "max_user_connections",
    };
    assert!(stderr.contains("the cell atomic x 8 workers failed: pool_timeout: "), "{stderr}");
    assert!(stderr.contains(refusal), "{stderr}");
    assert!(stderr.contains("the 1 cell finished before it is in the outputs"), "{stderr}");
    assert!(stdout.contains("atomic"), "the table of the finished cell: {stdout}");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.file("bench.json")).expect("JSON written")).expect("JSON");
    let cells = report["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 1, "{report:#}");
    assert_eq!((cells[0]["strategy"].as_str(), cells[0]["workers"].as_u64()), (Some("atomic"), Some(1)));
    assert_eq!(report["failure"]["strategy"], "atomic", "{report:#}");
    assert_eq!(report["failure"]["workers"], 8, "{report:#}");
    assert_eq!(report["failure"]["kind"], "pool_timeout", "{report:#}");
    assert!(report["failure"]["error"].as_str().is_some_and(|e| e.contains(refusal)), "{report:#}");
    let csv = std::fs::read_to_string(out.file("bench.csv")).expect("CSV written");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.lines().nth(1).is_some_and(|l| l.starts_with("atomic,1,")), "{csv}");
    let svg = std::fs::read_to_string(out.file("bench.svg")).expect("SVG written");
    roxmltree::Document::parse(&svg).expect("the chart is XML");
}

on_server_backends!(a_cell_that_cannot_run_keeps_the_cells_before_it);

/// Runs `racelab bench` with `args` against a server that does not exist and expects a usage error
/// (exit 2) that mentions `expected`: proof that the input was refused before connecting.
async fn refused(args: &[&str], expected: &str) {
    let mut all = vec!["bench", "--database-url", UNREACHABLE];
    for (flag, default) in [("--duration", "1s"), ("--warmup", "0s")] {
        if !args.contains(&flag) {
            all.extend([flag, default]);
        }
    }
    all.extend_from_slice(args);
    let output = racelab(&all).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?} should be a usage error:\n{stderr}");
    assert!(stderr.contains(expected), "{args:?}: expected `{expected}` in:\n{stderr}");
    assert!(!stderr.contains("cannot connect"), "{args:?} connected before refusing:\n{stderr}");
}

#[tokio::test]
async fn bad_worker_lists_are_refused_before_connecting() {
    refused(&["--workers", ""], "--workers is empty").await;
    refused(&["--workers", " , "], "--workers is empty").await;
    refused(&["--workers", "0"], "between 1 and 256, got 0").await;
    refused(&["--workers", "1,2,0"], "between 1 and 256, got 0").await;
    refused(&["--workers", "1000"], "between 1 and 256, got 1000").await;
    refused(&["--workers", "1,two"], "`two` is not a number").await;
}

#[tokio::test]
async fn zero_or_absurd_durations_are_refused_before_connecting() {
    refused(&["--duration", "0"], "--duration must be more than 0").await;
    refused(&["--duration", "0s"], "--duration must be more than 0").await;
    refused(&["--duration", "5h"], "at most 3600 s").await;
    refused(&["--duration", "ten"], "not a duration").await;
    refused(&["--warmup", "1h"], "--warmup must be at most 600 s").await;
}

#[tokio::test]
async fn unknown_or_unsupported_strategies_are_refused_before_connecting() {
    refused(&["--strategy", "atomic,optimstic"], "unknown strategy `optimstic`").await;
    refused(&["--strategy", ""], "no strategy given").await;
    refused(&["--strategy", "sharded", "--slots", "0"], "0 is not in 1..=1024").await;
    refused(&["--strategy", "sharded", "--slots", "1025"], "1025 is not in 1..=1024").await;
    let output =
        racelab(&["bench", "--database-url", "sqlite:///nonexistent-dir/x.db", "--strategy", "advisory"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("not supported on sqlite"), "{}", text(&output.stderr));
}

#[tokio::test]
async fn unwritable_output_paths_are_refused_before_connecting_and_nothing_is_created() {
    let out = OutDir::new();
    let missing_dir = out.file("no-such-dir").join("bench.json");
    refused(&["--json", &missing_dir.display().to_string()], "does not exist").await;
    refused(&["--csv", &out.0.display().to_string()], "is a directory").await;
    refused(&["--chart", ""], "a value is required").await;
    // A good path with a bad worker list: refused, and the good file is not created either.
    refused(&["--json", &out.arg("ok.json"), "--workers", "0"], "got 0").await;
    assert!(!out.file("ok.json").exists());
    assert_eq!(std::fs::read_dir(&*out.0).map(|d| d.count()).unwrap_or(0), 0, "nothing left behind");
}

#[tokio::test]
async fn a_pool_smaller_than_the_workers_is_refused_before_connecting() {
    refused(&["--workers", "1,8", "--pool-size", "4"], "--pool-size 4 is too small for 8 workers").await;
}

#[tokio::test]
async fn valid_input_gets_as_far_as_connecting() {
    // The control for the tests above: the same flags, valid, fail only at the connection (exit 1).
    let out = OutDir::new();
    let json = out.arg("bench.json");
    let output = racelab(&["bench", "--database-url", UNREACHABLE, "--workers", "1,2", "--json", &json]).await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("cannot connect"), "{}", text(&output.stderr));
    assert!(!out.file("bench.json").exists());
}

// `bench --workload stock` on SQLite: a safe strategy's cells print the invariant held, in the table
// and the JSON; the stock is the demand by default, so every purchase is made (none sold out) and
// the throughput counts them. No timing is asserted.
#[tokio::test]
async fn a_workload_bench_on_sqlite_prints_the_invariant_held_for_a_safe_strategy() {
    let test = TestDb::create(Backend::Sqlite).await;
    let out = OutDir::new();
    let json = out.arg("stock.json");
    let sweep = ["--workload", "stock", "-s", "conditional", "-w", "1,2", "-d", "5s", "-n", "20", "--json", &json];
    let mut args = vec!["bench", "--database-url", &test.url];
    args.extend_from_slice(&sweep);
    let output = racelab(&args).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("stock: invariant no-oversell"), "{stdout}");
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("conditional ")).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(rows.iter().all(|l| l.ends_with(" held")), "{stdout}");
    assert!(stdout.lines().skip(1).all(|l| l.chars().count() <= 80), "{stdout}");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.file("stock.json")).expect("JSON written")).expect("JSON");
    assert_eq!((report["workload"].as_str(), report["invariant"].as_str()), (Some("stock"), Some("no-oversell")));
    let cells = report["cells"].as_array().expect("cells");
    assert_eq!(cells.iter().map(|c| c["workers"].as_u64()).collect::<Vec<_>>(), [Some(1), Some(2)], "{report:#}");
    for cell in cells {
        let workers = cell["workers"].as_u64().expect("workers");
        assert_eq!(cell["invariant"]["held"], true, "{cell:#}");
        assert_eq!(cell["sizes"]["stock"], workers * 20, "the stock is the demand: {cell:#}");
        assert_eq!(
            (cell["acknowledged"].as_u64(), cell["refused"].as_u64()),
            (Some(workers * 20), Some(0)),
            "{cell:#}"
        );
        assert!(cell["throughput_per_s"].as_f64().is_some_and(|v| v > 0.0), "{cell:#}");
    }
}

#[tokio::test]
async fn workload_flags_that_do_not_fit_are_refused_before_connecting() {
    refused(&["--workload", "all"], "bench runs one workload at a time").await;
    refused(&["--workload", "ledger"], "unknown workload `ledger`").await;
    refused(&["--workload", "queue", "-s", "atomic"], "unknown queue strategy `atomic`").await;
    refused(&["--workload", "stock", "--csv", "x.csv"], "--csv is for the counter's bench").await;
    refused(&["--operations", "10"], "--operations sizes a workload's cells").await;
    refused(&["--stock", "10"], "--stock applies to the workloads beyond the counter").await;
    refused(&["--workload", "stock", "-w", "256", "-n", "1000000"], "at most 10000000").await;
}
