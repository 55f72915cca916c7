//! `racelab bench --workload W`: throughput and latency of a workload's strategies as workers grow,
//! with the workload's invariant checked in every cell.
//!
//! ```sh
//! racelab bench --database-url postgres://postgres@127.0.0.1/racelab_bench \
//!     --workload queue -s skip-locked,pessimistic -w 1,16 -d 5s -n 5000 --json queue.json
//! ```
//!
//! Each cell is one [`WorkloadExperiment`] on rows of its own, stopped after `--duration` (counted from
//! its first answered operation, so making the rows is not timed) unless every worker has made its
//! `--operations` first. Throughput counts the *answered* operations, acknowledged and refused: a
//! refusal ("sold out") is a business transaction the database answered, as a pgbench transaction is.
//! Operations a stop left unmade are not failures and are counted apart (`not_made`). A safe strategy
//! whose invariant broke makes the run fail (exit 1), after the table and the JSON are written.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use racelab_core::experiment::{Latency, Progress};
use racelab_core::{
    Backend, Database, ErrorKind, ExperimentError, Invariant, Workload, WorkloadExperiment, WorkloadOutcome,
};
use serde::Serialize;

use super::args::BenchArgs;
use super::plan::{Plan, WorkloadPlan};
use crate::cli::failure::Failure;
use crate::cli::output::say;
use crate::report::text::{COMPACT_WIDTH, StackedRow, short_ms, stacked, wrap};

/// Everything one `racelab bench --workload` run measured (its `--json`).
#[derive(Debug, Serialize)]
pub struct WorkloadBenchReport {
    pub workload: Workload,
    /// The invariant's name, checked in every cell.
    pub invariant: &'static str,
    pub database: Backend,
    pub version: String,
    /// The database URL without its password.
    pub url: String,
    /// The most seconds a cell runs (it ends sooner if its workers make all their operations).
    pub duration_s: f64,
    /// The most operations one worker makes in a cell.
    pub operations_per_worker: u64,
    /// The level asked for, or `default`.
    pub isolation: String,
    pub seed: u64,
    /// The cells that finished, in the order they ran.
    pub cells: Vec<WorkloadCell>,
    /// Why the bench stopped before its last cell, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// One strategy of the workload at one worker count.
#[derive(Debug, Serialize)]
pub struct WorkloadCell {
    pub strategy: &'static str,
    pub workers: usize,
    /// Whether the strategy is meant to keep the invariant.
    pub safe: bool,
    /// Answered operations (acknowledged + refused) per second.
    pub throughput_per_s: f64,
    /// Acknowledged operations per second.
    pub acknowledged_per_s: f64,
    /// Latency of whole operations, retries and backoff included.
    pub latency_ms: Latency,
    /// From the first worker's start to the last one's end.
    pub elapsed_s: f64,
    pub acknowledged: u64,
    /// Refused by the business rule (sold out, insufficient funds, already booked): answers.
    pub refused: u64,
    /// Gave up with an error (by kind in `errors`).
    pub failed: u64,
    /// The answer to the commit was lost.
    pub in_doubt: u64,
    /// Operations the end of `--duration` left unmade.
    pub not_made: u64,
    /// Attempts run again after a conflict.
    pub retries: u64,
    /// `retries` per operation attempted.
    pub retries_per_operation: f64,
    /// Deadlocks met, retried or not.
    pub deadlocks: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    pub retried_errors: BTreeMap<ErrorKind, u64>,
    /// The sizes of the cell's rows.
    pub sizes: BTreeMap<&'static str, i64>,
    pub invariant: Invariant,
}

impl WorkloadCell {
    fn from_outcome(outcome: &WorkloadOutcome) -> Self {
        let not_made = outcome.errors.get(&ErrorKind::Stopped).copied().unwrap_or(0);
        let mut errors = outcome.errors.clone();
        errors.remove(&ErrorKind::Stopped);
        let answered = outcome.acknowledged + outcome.refused;
        let failed = outcome.failed - not_made;
        let attempted = answered + failed + outcome.in_doubt;
        let seconds = outcome.elapsed_ms / 1000.0;
        let per_s = |n: u64| if seconds > 0.0 { (n as f64 / seconds * 10.0).round() / 10.0 } else { 0.0 };
        let deadlock = |kinds: &BTreeMap<ErrorKind, u64>| kinds.get(&ErrorKind::Deadlock).copied().unwrap_or(0);
        Self {
            strategy: outcome.strategy,
            workers: outcome.workers,
            safe: outcome.safe,
            throughput_per_s: per_s(answered),
            acknowledged_per_s: per_s(outcome.acknowledged),
            latency_ms: outcome.latency_ms,
            elapsed_s: seconds,
            acknowledged: outcome.acknowledged,
            refused: outcome.refused,
            failed,
            in_doubt: outcome.in_doubt,
            not_made,
            retries: outcome.retries,
            retries_per_operation: if attempted == 0 { 0.0 } else { outcome.retries as f64 / attempted as f64 },
            deadlocks: deadlock(&outcome.errors) + deadlock(&outcome.retried_errors),
            errors,
            retried_errors: outcome.retried_errors.clone(),
            sizes: outcome.sizes.clone(),
            invariant: outcome.invariant.clone(),
        }
    }

    /// A safe strategy broke the invariant: the bench fails.
    fn broke(&self) -> bool {
        self.safe && self.invariant.held == Some(false)
    }

    /// `held`, `BROKEN` (a safe strategy: the run fails), `broken` (an unsafe one, as expected), or
    /// `unread` (the rows could not be read: no verdict).
    fn verdict(&self) -> &'static str {
        match self.invariant.held {
            Some(true) => "held",
            Some(false) if self.safe => "BROKEN",
            Some(false) => "broken",
            None => "unread",
        }
    }

    /// What the figures do not say: refusals, failures, the invariant's detail when it did not hold.
    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.invariant.held != Some(true) {
            notes.push(format!("{}: {}", self.invariant.name, self.invariant.detail));
        }
        let mut counts = Vec::new();
        if self.refused > 0 {
            counts.push(format!("{} refused", self.refused));
        }
        if self.failed > 0 {
            let kinds: Vec<String> = self.errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            counts.push(format!("{} failed ({})", self.failed, kinds.join(", ")));
        }
        if self.in_doubt > 0 {
            counts.push(format!("{} in doubt", self.in_doubt));
        }
        if !counts.is_empty() {
            notes.push(counts.join(", "));
        }
        notes
    }
}

/// Runs every cell of the workload on `nodes`, prints the table, writes `--json`, and fails if a safe
/// strategy broke the invariant or a cell could not run.
pub async fn run(
    args: &BenchArgs,
    plan: &Plan,
    workload: &WorkloadPlan,
    nodes: &[Database],
    version: String,
) -> Result<(), Failure> {
    let db = &nodes[0];
    let mut report = WorkloadBenchReport {
        workload: workload.workload,
        invariant: workload.workload.invariant(),
        database: db.backend(),
        version,
        url: db.redacted_url(),
        duration_s: plan.duration.as_secs_f64(),
        operations_per_worker: workload.operations,
        isolation: args.workloads.isolation.map_or("default", |level| level.name()).to_owned(),
        seed: args.workloads.seed,
        cells: Vec::with_capacity(plan.cells()),
        failure: None,
    };
    let mut stopped_by = None;
    'cells: for &strategy in &workload.strategies {
        for &workers in &plan.workers {
            let experiment = WorkloadExperiment {
                retry: plan.retry,
                lock_retries: args.lock_retries,
                isolation: args.workloads.isolation,
                seed: args.workloads.seed,
                sizes: workload.sizes(sizes_given(args), workers),
                ..WorkloadExperiment::new(workload.workload, strategy, workers, workload.operations)
            };
            match run_cell(&experiment, nodes, plan.duration).await {
                Ok(outcome) => {
                    let cell = WorkloadCell::from_outcome(&outcome);
                    eprintln!("{}", cell_line(&cell));
                    report.cells.push(cell);
                }
                Err(err) => {
                    report.failure = Some(format!("{strategy} x {workers} workers could not run: {err}"));
                    stopped_by = Some(err);
                    break 'cells;
                }
            }
        }
    }
    if !report.cells.is_empty() {
        say(table(&report))?;
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(Failure::runtime_from)?;
        std::fs::write(path, text)
            .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", path.display())).because(e))?;
        eprintln!("wrote {}", path.display());
    }
    if let (Some(why), Some(err)) = (report.failure, stopped_by) {
        return Err(Failure::runtime(why).because(err));
    }
    let broken: Vec<String> = report
        .cells
        .iter()
        .filter(|c| c.broke())
        .map(|c| format!("{} x {}: {}", c.strategy, c.workers, c.invariant.detail))
        .collect();
    if !broken.is_empty() {
        return Err(Failure::runtime(format!(
            "INVARIANT BROKEN: {} failed to keep {} in {}: {}",
            if broken.len() == 1 { "a safe strategy" } else { "safe strategies" },
            workload.workload.invariant(),
            if broken.len() == 1 { "one cell".to_owned() } else { format!("{} cells", broken.len()) },
            broken.join("; ")
        )));
    }
    Ok(())
}

/// The sizes given on the command line (booking's slots per room are `--slots`, as in the lab).
fn sizes_given(args: &BenchArgs) -> racelab_core::workload::Sizes {
    racelab_core::workload::Sizes { slots: usize::from(args.shard.slots), ..args.workloads.sizes() }
}

/// One cell, stopped `limit` after its first answered operation: making the rows and connecting are
/// not part of the measured time (a queue of many jobs takes seconds to make).
async fn run_cell(
    experiment: &WorkloadExperiment,
    nodes: &[Database],
    limit: Duration,
) -> Result<WorkloadOutcome, ExperimentError> {
    let progress = Arc::new(Progress::default());
    let run = experiment.run_on(nodes, &progress);
    tokio::pin!(run);
    let mut poll = tokio::time::interval(Duration::from_millis(10));
    loop {
        tokio::select! {
            outcome = &mut run => return outcome,
            _ = poll.tick() => if progress.snapshot().attempts > 0 { break },
        }
    }
    tokio::select! {
        outcome = &mut run => return outcome,
        () = tokio::time::sleep(limit) => progress.stop(),
    }
    run.await
}

/// One finished cell on stderr (strategy x workers), within 80 columns.
fn cell_line(cell: &WorkloadCell) -> String {
    let mut line = format!(
        "  {:<21} x {:<3} {:>7.0} op/s  p99 {:>5} ms  {:>4.2} retries  {}",
        cell.strategy,
        cell.workers,
        cell.throughput_per_s,
        short_ms(cell.latency_ms.p99),
        cell.retries_per_operation,
        cell.verdict(),
    );
    for note in cell.notes().iter().flat_map(|note| wrap(note, COMPACT_WIDTH - 6)) {
        line.push_str("\n      ");
        line.push_str(&note);
    }
    line
}

/// The invariant in a sentence, then a line per cell (notes below it), within 80 columns.
fn table(report: &WorkloadBenchReport) -> String {
    let title =
        format!("{}: invariant {}: {}", report.workload, report.invariant, report.workload.invariant_sentence());
    let rows: Vec<StackedRow> = report
        .cells
        .iter()
        .map(|cell| StackedRow {
            name: cell.strategy,
            figures: vec![
                cell.workers.to_string(),
                format!("{:.0}", cell.throughput_per_s),
                short_ms(cell.latency_ms.p50),
                short_ms(cell.latency_ms.p99),
                format!("{:.2}", cell.retries_per_operation),
                cell.deadlocks.to_string(),
                cell.verdict().to_owned(),
            ],
            notes: cell.notes(),
        })
        .collect();
    let header = ["workers", "op/s", "p50 ms", "p99 ms", "retry/op", "deadlocks", "invariant"];
    format!(
        "{}\n{}\nop/s: answered operations (acknowledged + refused) per second",
        wrap(&title, COMPACT_WIDTH).join("\n"),
        stacked(&header, &rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(held: Option<bool>, safe: bool) -> WorkloadCell {
        WorkloadCell {
            strategy: "pessimistic-unordered",
            workers: 32,
            safe,
            throughput_per_s: 123_456.0,
            acknowledged_per_s: 100_000.0,
            latency_ms: Latency { p50: 0.5, p95: 1.0, p99: 1234.0, max: 5000.0 },
            elapsed_s: 1.0,
            acknowledged: 100_000,
            refused: 23_456,
            failed: 0,
            in_doubt: 0,
            not_made: 10,
            retries: 5,
            retries_per_operation: 0.0,
            deadlocks: 12_345,
            errors: BTreeMap::new(),
            retried_errors: BTreeMap::new(),
            sizes: BTreeMap::new(),
            invariant: Invariant { name: "money-conserved", held, violations: None, detail: "detail".into() },
        }
    }

    #[test]
    fn a_broken_invariant_is_loud_for_a_safe_strategy_only() {
        assert_eq!(cell(Some(true), true).verdict(), "held");
        assert_eq!(cell(Some(false), true).verdict(), "BROKEN");
        assert!(cell(Some(false), true).broke());
        assert_eq!(cell(Some(false), false).verdict(), "broken");
        assert!(!cell(Some(false), false).broke());
        assert_eq!(cell(None, true).verdict(), "unread");
    }

    #[test]
    fn the_line_and_the_table_fit_80_columns_with_the_widest_figures() {
        let report = WorkloadBenchReport {
            workload: Workload::Transfer,
            invariant: "money-conserved",
            database: Backend::Postgres,
            version: String::new(),
            url: String::new(),
            duration_s: 1.0,
            operations_per_worker: 1,
            isolation: "default".into(),
            seed: 1,
            cells: vec![cell(Some(true), true), cell(Some(false), true)],
            failure: None,
        };
        let text = format!("{}\n{}", cell_line(&report.cells[1]), table(&report));
        let long: Vec<&str> = text.lines().filter(|l| l.chars().count() > COMPACT_WIDTH).collect();
        assert_eq!(long, Vec::<&str>::new(), "{text}");
        assert!(text.contains("BROKEN"), "{text}");
    }
}
