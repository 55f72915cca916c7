//! The bench's plan: every flag checked before the first connection, so a typo costs nothing.
//!
//! Never connects, and never creates or truncates an output file: a new one's directory is probed
//! with a scratch file, removed at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use racelab_core::workload::Sizes;
use racelab_core::{ConnectOptions, Experiment, RetryPolicy, Strategy, Workload, WorkloadExperiment};

use super::args::BenchArgs;
use crate::cli::failure::Failure;
use crate::cli::lab_workloads::{Chosen, strategies_of};
use crate::cli::strategies::parse_strategies;

/// The longest measured window one cell may have: longer is a typo, not a benchmark.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// The longest warm-up one cell may have.
pub const MAX_WARMUP: Duration = Duration::from_secs(600);

/// A workload's operations per worker per cell when `--operations` is not given: enough that a cell
/// of a few workers usually ends on `--duration`, few enough that a queue's jobs are quick to make.
pub const DEFAULT_OPERATIONS: u64 = 2000;

/// What the user asked for, checked: nothing here can fail once the bench starts.
#[derive(Debug)]
pub struct Plan {
    /// The counter's strategies; empty when a workload runs.
    pub strategies: Vec<Strategy>,
    /// The workload asked for with `--workload`, if not the counter.
    pub workload: Option<WorkloadPlan>,
    pub workers: Vec<usize>,
    pub warmup: Duration,
    pub duration: Duration,
    pub retry: RetryPolicy,
    /// One per node the workers are spread over.
    pub nodes: Vec<ConnectOptions>,
}

/// `--workload W`: its strategies and the size of each cell.
#[derive(Debug)]
pub struct WorkloadPlan {
    pub workload: Workload,
    pub strategies: Vec<&'static str>,
    /// Operations per worker per cell, at most (the cell may end on `--duration` first).
    pub operations: u64,
}

impl WorkloadPlan {
    /// The rows of one cell of `workers`: the sizes given, and otherwise as large as the demand
    /// (workers x operations), so that a bench measures purchases and claims rather than "sold out"
    /// (the lab's default is half the demand, to show the refusals).
    pub fn sizes(&self, given: Sizes, workers: usize) -> Sizes {
        let demand = (workers as u64).saturating_mul(self.operations);
        Sizes {
            stock: given.stock.or(Some(i64::try_from(demand).unwrap_or(i64::MAX))),
            jobs: given.jobs.or(Some(usize::try_from(demand).unwrap_or(Sizes::MAX_JOBS).min(Sizes::MAX_JOBS))),
            ..given
        }
    }
}

impl Plan {
    pub fn cells(&self) -> usize {
        let strategies = self.workload.as_ref().map_or(self.strategies.len(), |w| w.strategies.len());
        strategies * self.workers.len()
    }

    pub fn per_cell(&self) -> Duration {
        self.warmup + self.duration
    }
}

/// Checks every flag, before anything connects.
pub fn plan(args: &BenchArgs) -> Result<Plan, Failure> {
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
    let workload = workload_plan(args, most_workers)?;
    let strategies = match workload {
        Some(_) => Vec::new(),
        None => parse_strategies(&args.strategy, nodes[0].url.backend())?
            .into_iter()
            .map(|s| s.with_slots(args.shard.slots))
            .collect(),
    };
    for (flag, path) in [("--json", &args.json), ("--csv", &args.csv), ("--chart", &args.chart)] {
        if let Some(path) = path {
            check_writable(flag, path)?;
        }
    }
    Ok(Plan { strategies, workload, workers, warmup: args.warmup, duration: args.duration, retry, nodes })
}

/// `--workload W` checked with the flags that go with it; `None` for the counter.
fn workload_plan(args: &BenchArgs, most_workers: usize) -> Result<Option<WorkloadPlan>, Failure> {
    let workload = match args.workloads.chosen(args.post)? {
        Chosen::Counter => {
            if args.operations.is_some() {
                return Err(Failure::usage(
                    "--operations sizes a workload's cells: add --workload; the counter's cells are timed by --duration",
                ));
            }
            return Ok(None);
        }
        Chosen::All => {
            return Err(Failure::usage(
                "bench runs one workload at a time: --workload stock, transfer, oncall, booking or queue",
            ));
        }
        Chosen::One(workload) => workload,
    };
    for (flag, given) in [("--csv", args.csv.is_some()), ("--chart", args.chart.is_some()), ("--wide", args.wide)] {
        if given {
            return Err(Failure::usage(format!("{flag} is for the counter's bench; a workload's bench writes --json")));
        }
    }
    let operations = args.operations.unwrap_or(DEFAULT_OPERATIONS);
    if !(1..=Experiment::MAX_INCREMENTS).contains(&operations) {
        return Err(Failure::usage(format!(
            "--operations must be between 1 and {}, got {operations}",
            Experiment::MAX_INCREMENTS
        )));
    }
    let total = (most_workers as u64).saturating_mul(operations);
    if total > WorkloadExperiment::MAX_OPERATIONS_PER_RUN {
        return Err(Failure::usage(format!(
            "--workers x --operations must be at most {} for a workload (each operation is kept for the proof), \
             got {most_workers} x {operations}",
            WorkloadExperiment::MAX_OPERATIONS_PER_RUN
        )));
    }
    let strategies = workload_strategies(workload, &args.strategy)?;
    Ok(Some(WorkloadPlan { workload, strategies, operations }))
}

/// The strategies `-s` names for `workload`: `all` is its safe ones (a benchmark of a strategy that
/// breaks the invariant measures nothing worth having), plus any unsafe one named as well.
fn workload_strategies(workload: Workload, list: &str) -> Result<Vec<&'static str>, Failure> {
    let chosen = strategies_of(workload, list)?;
    let names: Vec<&str> = list.split(',').map(str::trim).collect();
    let all = names.iter().any(|n| n.eq_ignore_ascii_case("all"));
    let named = |s: &str| names.iter().any(|n| n.eq_ignore_ascii_case(s));
    Ok(chosen.into_iter().filter(|s| !all || workload.is_safe(s) == Some(true) || named(s)).collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_lists_are_checked_sorted_and_deduplicated() {
        assert_eq!(parse_workers("8, 1,2,8").unwrap(), vec![1, 2, 8]);
        for bad in ["", " , ", "0", "1,0", "257", "two", "-1"] {
            let failure = parse_workers(bad).unwrap_err();
            assert_eq!(failure.code(), 2, "{bad}: {failure}");
        }
    }

    #[test]
    fn all_is_a_workloads_safe_strategies_and_an_unsafe_one_runs_when_named() {
        assert_eq!(
            workload_strategies(Workload::Stock, "all").unwrap(),
            vec!["conditional", "pessimistic", "optimistic", "serializable", "check-constraint"]
        );
        assert_eq!(workload_strategies(Workload::Queue, "naive,all").unwrap()[0], "naive");
        assert_eq!(workload_strategies(Workload::Queue, "skip-locked").unwrap(), vec!["skip-locked"]);
        assert_eq!(workload_strategies(Workload::Queue, "atomic").unwrap_err().code(), 2);
    }

    #[test]
    fn a_workloads_sizes_default_to_the_demand_and_a_given_size_wins() {
        let plan = WorkloadPlan { workload: Workload::Queue, strategies: vec![], operations: 1000 };
        let sizes = plan.sizes(Sizes::default(), 8);
        assert_eq!((sizes.stock, sizes.jobs), (Some(8000), Some(8000)));
        assert_eq!(plan.sizes(Sizes::default(), 256).jobs, Some(Sizes::MAX_JOBS));
        let given = Sizes { stock: Some(5), ..Sizes::default() };
        assert_eq!(plan.sizes(given, 8).stock, Some(5));
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
