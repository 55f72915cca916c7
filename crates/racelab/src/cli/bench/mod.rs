//! `racelab bench`: throughput and latency of strategies as workers grow.
//!
//! ```sh
//! racelab bench --database-url postgres://postgres@127.0.0.1/racelab_bench \
//!     --strategy atomic,pessimistic,serializable --workers 1,8,32 --duration 10s \
//!     --json bench.json --csv bench.csv --chart bench.svg
//! ```
//!
//! Each cell (one strategy at one worker count) is a time-bounded [`Experiment`] on a fresh row: every
//! worker on its own connection, looping until the deadline, timed after a warm-up. Everything the
//! user typed is checked before the first connection, so a typo costs nothing; output files are
//! written only once every cell has run. The run fails (exit 1) if a safe strategy broke
//! `actual == acknowledged`, after the outputs are written so the evidence is kept.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use racelab_core::{Database, Experiment, Outcome, StopAfter, Strategy, Target};

use super::failure::Failure;
use super::output::say;
use super::strategies::{not_run_notes, parse_strategies};
use crate::config::{DatabaseArgs, RetryArgs, ShardArgs, parse_duration};
use crate::report::bench::{BenchCell, BenchReport, CellFailure};
use crate::report::text::{note, short_server_name};
use crate::report::{bench_table, chart, csv};

/// The longest measured window one cell may have: longer is a typo, not a benchmark.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// The longest warm-up one cell may have.
pub const MAX_WARMUP: Duration = Duration::from_secs(600);

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub retry: RetryArgs,
    #[command(flatten)]
    pub shard: ShardArgs,

    /// Strategies to run: all, or a comma-separated list of naive, atomic, pessimistic,
    /// pessimistic-nowait, pessimistic-skip-locked, optimistic, versioned, versioned-no-retry,
    /// serializable, advisory, sharded.
    #[arg(long, short = 's', default_value = "all")]
    pub strategy: String,

    /// Worker counts to sweep, comma-separated (each 1 to 256); each worker holds its own connection.
    #[arg(long, short = 'w', default_value = "1,2,4,8,16,32,64")]
    pub workers: String,

    /// Measured time per cell, e.g. 10s, 500ms (at most 1h).
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Unmeasured time before each cell's measured window (at most 10m; 0 for none).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write the results as CSV to this file (one line per cell).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Write an SVG chart to this file: throughput and p99 latency vs workers, one line per strategy.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,

    /// Print every column of the final table on one line per cell (the default fits 80 columns).
    #[arg(long)]
    pub wide: bool,

    /// Run every cell on this post (created if missing) instead of a fresh row per cell, so that
    /// separate processes can share a row.
    #[arg(long)]
    pub post: Option<i64>,

    /// Times one increment refused by a lock (NOWAIT, SKIP LOCKED, a lock timeout) is tried again.
    #[arg(long, env = "RACELAB_LOCK_RETRIES", default_value_t = 0)]
    pub lock_retries: u32,
}

/// What the user asked for, checked: nothing here can fail once the bench starts.
#[derive(Debug)]
struct Plan {
    strategies: Vec<Strategy>,
    workers: Vec<usize>,
    warmup: Duration,
    duration: Duration,
    retry: racelab_core::RetryPolicy,
    /// One per node the workers are spread over.
    nodes: Vec<racelab_core::ConnectOptions>,
}

impl Plan {
    fn cells(&self) -> usize {
        self.strategies.len() * self.workers.len()
    }

    fn per_cell(&self) -> Duration {
        self.warmup + self.duration
    }
}

/// One debug span per run; `skip_all` because the arguments hold the database URL, password included.
#[tracing::instrument(level = "debug", name = "bench", skip_all,
    fields(strategy = %args.strategy, workers = %args.workers, duration = ?args.duration))]
pub async fn run(args: BenchArgs) -> Result<(), Failure> {
    let plan = plan(&args)?;
    let mut nodes = Vec::with_capacity(plan.nodes.len());
    for node in &plan.nodes {
        nodes.push(Database::connect(node.clone()).await?);
    }
    let db = nodes[0].clone();
    let version = db.server_version().await.map_err(Failure::runtime_from)?;
    let place = nodes.iter().map(Database::redacted_url).collect::<Vec<_>>().join(", ");
    say(format_args!(
        "racelab bench on {} ({})\n{} x {}, {} s + {} s warm-up per cell, about {} s in all",
        place,
        short_server_name(db.backend(), &version),
        count(plan.strategies.len(), "strategy", "strategies"),
        count(plan.workers.len(), "worker count", "worker counts"),
        plan.duration.as_secs_f64(),
        plan.warmup.as_secs_f64(),
        (plan.per_cell().as_secs_f64() * plan.cells() as f64).ceil(),
    ))?;
    for text in not_run_notes(&args.strategy, db.backend()) {
        say(note(&text))?;
    }

    let mut progress = Progress::new(&plan, std::io::stderr().is_terminal());
    let mut report = BenchReport {
        database: db.backend(),
        version,
        url: db.redacted_url(),
        duration_s: plan.duration.as_secs_f64(),
        warmup_s: plan.warmup.as_secs_f64(),
        cells: Vec::with_capacity(plan.cells()),
        failure: None,
    };
    // A cell that cannot run ends the bench, but not the record of the cells before it.
    let mut stopped_by = None;
    'cells: for &strategy in &plan.strategies {
        for &workers in &plan.workers {
            let experiment = Experiment {
                stop: StopAfter::Duration { warmup: plan.warmup, measure: plan.duration },
                target: args.post.map_or(Target::FreshPost, Target::Post),
                retry: plan.retry,
                lock_retries: args.lock_retries,
                ..Experiment::new(strategy, workers, 1)
            };
            match progress.run_cell(&nodes, &experiment).await {
                Ok(outcome) => {
                    let cell = BenchCell::from_outcome(&outcome);
                    progress.cell_done(&cell);
                    report.cells.push(cell);
                }
                Err(err) => {
                    progress.abandon();
                    report.failure = Some(CellFailure::new(strategy, workers, &err));
                    stopped_by = Some(err);
                    break 'cells;
                }
            }
        }
    }
    if report.failure.is_none() {
        progress.finish();
    }
    for node in &nodes {
        node.close().await;
    }

    if !report.cells.is_empty() {
        let table =
            if args.wide { bench_table::bench_table(&report).to_string() } else { bench_table::compact(&report) };
        say(table)?;
    }
    write_outputs(&args, &report)?;
    if let (Some(failure), Some(err)) = (&report.failure, stopped_by) {
        let kept = match report.cells.len() {
            0 => "no cell had finished".to_owned(),
            n => format!(
                "the {} finished before it {} in the outputs",
                count(n, "cell", "cells"),
                if n == 1 { "is" } else { "are" }
            ),
        };
        return Err(Failure::runtime(format!(
            "the cell {} x {} workers failed: {}; {kept}",
            failure.strategy, failure.workers, failure.error
        ))
        .because(err));
    }

    let violations = report.violations();
    if !violations.is_empty() {
        let cells: Vec<String> = violations
            .iter()
            .map(|c| format!("{} x {}: {}", c.strategy, c.workers, bench_table::invariant(c)))
            .collect();
        return Err(Failure::runtime(format!("actual != acknowledged for a safe strategy: {}", cells.join("; "))));
    }
    Ok(())
}

/// "1 strategy", "8 strategies".
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Checks every flag, before anything connects.
fn plan(args: &BenchArgs) -> Result<Plan, Failure> {
    let workers = parse_workers(&args.workers)?;
    if args.duration.is_zero() || args.duration > MAX_DURATION {
        return Err(Failure::usage(format!(
            "--duration must be more than 0 and at most {} s, got {:?}",
            MAX_DURATION.as_secs(),
            args.duration
        )));
    }
    if args.warmup > MAX_WARMUP {
        return Err(Failure::usage(format!(
            "--warmup must be at most {} s, got {:?}",
            MAX_WARMUP.as_secs(),
            args.warmup
        )));
    }
    let retry = args.retry.policy().map_err(Failure::usage_from)?;
    let most_workers = workers.iter().copied().max().unwrap_or(1);
    // One connection per worker, and one more for reading the row before and after.
    let per_node = args.database.workers_per_node(most_workers);
    let nodes = args.database.connect_options_each(per_node as u32 + 1)?;
    if (nodes[0].max_connections as usize) < per_node {
        return Err(Failure::usage(format!(
            "--pool-size {} is too small for {per_node} workers per node: each worker needs its own connection",
            nodes[0].max_connections
        )));
    }
    let strategies = parse_strategies(&args.strategy, nodes[0].url.backend())?
        .into_iter()
        .map(|s| s.with_slots(args.shard.slots))
        .collect();
    for (flag, path) in [("--json", &args.json), ("--csv", &args.csv), ("--chart", &args.chart)] {
        if let Some(path) = path {
            check_writable(flag, path)?;
        }
    }
    Ok(Plan { strategies, workers, warmup: args.warmup, duration: args.duration, retry, nodes })
}

/// `1,2,4,8`: each between 1 and [`Experiment::MAX_WORKERS`]; duplicates dropped, sorted ascending.
fn parse_workers(list: &str) -> Result<Vec<usize>, Failure> {
    let mut workers = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let n: usize = item.parse().map_err(|e| {
            Failure::usage(format!("--workers: `{item}` is not a number (expected e.g. 1,2,4,8)")).because(e)
        })?;
        if !(1..=Experiment::MAX_WORKERS).contains(&n) {
            return Err(Failure::usage(format!(
                "--workers: each count must be between 1 and {}, got {n}",
                Experiment::MAX_WORKERS
            )));
        }
        workers.push(n);
    }
    if workers.is_empty() {
        return Err(Failure::usage("--workers is empty; give worker counts such as 1,2,4,8"));
    }
    workers.sort_unstable();
    workers.dedup();
    Ok(workers)
}

/// Refuses an output path that cannot be written, without creating or truncating anything: the
/// directory must exist and accept a new file, and an existing file must open for writing.
fn check_writable(flag: &str, path: &Path) -> Result<(), Failure> {
    let refuse = |why: &str| Failure::usage(format!("{flag} {}: {why}", path.display()));
    if path.as_os_str().is_empty() {
        return Err(refuse("empty path"));
    }
    if path.is_dir() {
        return Err(refuse("is a directory"));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(refuse(&format!("directory {} does not exist", dir.display())));
    }
    if path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| refuse(&format!("cannot write: {e}")).because(e))?;
        return Ok(());
    }
    let probe = dir.join(format!(".racelab-write-check-{}", std::process::id()));
    std::fs::File::create(&probe).map_err(|e| refuse(&format!("cannot create a file there: {e}")).because(e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn write_outputs(args: &BenchArgs, report: &BenchReport) -> Result<(), Failure> {
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text)
            .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", path.display())).because(e))
    };
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(report).map_err(Failure::runtime_from)?;
        write(path, &text)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.csv {
        write(path, &csv::bench_csv(report))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.chart {
        let svg = chart::bench_chart(report).map_err(Failure::runtime_from)?;
        write(path, &svg)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// A progress bar on a terminal (time-based, so its ETA is right), plain lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    per_cell_ms: u64,
    cells: usize,
    done: usize,
}

impl Progress {
    fn new(plan: &Plan, terminal: bool) -> Self {
        let per_cell_ms = u64::try_from(plan.per_cell().as_millis()).unwrap_or(u64::MAX);
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(per_cell_ms.saturating_mul(plan.cells() as u64)),
                ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40.cyan/blue} {percent:>3}% eta {eta:<4} cell {prefix}: {msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Self { bar, per_cell_ms, cells: plan.cells(), done: 0 }
    }

    /// Runs one cell, moving the bar along with the clock while it runs.
    async fn run_cell(
        &self,
        nodes: &[Database],
        experiment: &Experiment,
    ) -> Result<Outcome, racelab_core::ExperimentError> {
        let label = format!("{} x {} workers", experiment.strategy, experiment.workers);
        let Some(bar) = &self.bar else {
            return experiment.run_on(nodes, &Default::default()).await;
        };
        bar.set_prefix(format!("{}/{}", self.done + 1, self.cells));
        bar.set_message(label);
        let base = self.per_cell_ms.saturating_mul(self.done as u64);
        let started = Instant::now();
        let progress = Default::default();
        let run = experiment.run_on(nodes, &progress);
        tokio::pin!(run);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                outcome = &mut run => return outcome,
                _ = tick.tick() => {
                    let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    bar.set_position(base + elapsed.min(self.per_cell_ms));
                }
            }
        }
    }

    fn cell_done(&mut self, cell: &BenchCell) {
        self.done += 1;
        let line = format!(
            "  {:<24} {:>3} workers: {:>8.0} incr/s  p99 {:>8.2} ms  retries/incr {:.3}  failed {}  actual == acknowledged: {}",
            cell.strategy.name(),
            cell.workers,
            cell.throughput_per_s,
            cell.latency_ms.p99,
            cell.retries_per_increment,
            cell.failed,
            bench_table::invariant(cell),
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.per_cell_ms.saturating_mul(self.done as u64));
                bar.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(1, "strategy", "strategies"), "1 strategy");
        assert_eq!(count(2, "strategy", "strategies"), "2 strategies");
        assert_eq!(count(0, "worker count", "worker counts"), "0 worker counts");
    }

    #[test]
    fn worker_lists_are_checked_sorted_and_deduplicated() {
        assert_eq!(parse_workers("8, 1,2,8").unwrap(), vec![1, 2, 8]);
        for bad in ["", " , ", "0", "1,0", "257", "two", "-1"] {
            let failure = parse_workers(bad).unwrap_err();
            assert_eq!(failure.code(), 2, "{bad}: {failure}");
        }
    }

    #[test]
    fn unwritable_paths_are_refused_without_creating_anything() {
        let dir = std::env::temp_dir();
        assert!(check_writable("--json", &dir).unwrap_err().to_string().contains("is a directory"));
        let missing = dir.join("racelab-no-such-dir").join("out.json");
        assert!(check_writable("--json", &missing).unwrap_err().to_string().contains("does not exist"));
        let fresh = dir.join(format!("racelab-check-{}.json", std::process::id()));
        check_writable("--json", &fresh).unwrap();
        assert!(!fresh.exists());
    }
}
