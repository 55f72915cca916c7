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

mod args;
mod plan;
mod progress;
/// `bench --workload W`: a workload's strategies as workers grow, its invariant checked per cell.
mod workload;

use std::io::IsTerminal;
use std::path::Path;

use racelab_core::{Database, Experiment, ExperimentError, StopAfter, Target};

pub use self::args::BenchArgs;
use self::plan::{Plan, WorkloadPlan, plan};
use self::progress::Progress;
use super::failure::Failure;
use super::output::say;
use super::strategies::not_run_notes;
use crate::http::lab::keep_default_post;
use crate::report::bench::{BenchCell, BenchReport, CellFailure};
use crate::report::text::{COMPACT_WIDTH, note, short_server_name, wrap};
use crate::report::{bench_table, chart, csv};

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
    if let Some(chosen) = &plan.workload {
        say(workload_header(&plan, chosen, &nodes, &short_server_name(db.backend(), &version)))?;
        let ran = workload::run(&args, &plan, chosen, &nodes, version).await;
        for node in &nodes {
            node.close().await;
        }
        return ran;
    }
    if args.post.is_none() {
        keep_default_post(&db).await.map_err(Failure::runtime_from)?;
    }
    say(header(&plan, &nodes, &short_server_name(db.backend(), &version)))?;
    for text in not_run_notes(&args.strategy, db.backend()) {
        say(note(&text))?;
    }
    let mut report = BenchReport {
        database: db.backend(),
        version,
        url: db.redacted_url(),
        duration_s: plan.duration.as_secs_f64(),
        warmup_s: plan.warmup.as_secs_f64(),
        cells: Vec::with_capacity(plan.cells()),
        failure: None,
    };
    let stopped_by = run_cells(&args, &plan, &nodes, &mut report).await;
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

/// "racelab bench on URL (server)", the size of the sweep and how long it will take.
fn header(plan: &Plan, nodes: &[Database], server: &str) -> String {
    format!(
        "racelab bench on {} ({server})\n{} x {}, {} s + {} s warm-up per cell, about {} s in all",
        nodes.iter().map(Database::redacted_url).collect::<Vec<_>>().join(", "),
        count(plan.strategies.len(), "strategy", "strategies"),
        count(plan.workers.len(), "worker count", "worker counts"),
        plan.duration.as_secs_f64(),
        plan.warmup.as_secs_f64(),
        (plan.per_cell().as_secs_f64() * plan.cells() as f64).ceil(),
    )
}

/// "racelab bench --workload W on URL (server)", the size of the sweep and its bounds.
fn workload_header(plan: &Plan, chosen: &WorkloadPlan, nodes: &[Database], server: &str) -> String {
    let sweep = format!(
        "{} x {}, each cell at most {} s or {} per worker (no warm-up: each cell's rows are fresh)",
        count(chosen.strategies.len(), "strategy", "strategies"),
        count(plan.workers.len(), "worker count", "worker counts"),
        plan.duration.as_secs_f64(),
        count(chosen.operations as usize, "operation", "operations"),
    );
    format!(
        "racelab bench --workload {} on {} ({server})\n{}",
        chosen.workload,
        nodes.iter().map(Database::redacted_url).collect::<Vec<_>>().join(", "),
        wrap(&sweep, COMPACT_WIDTH).join("\n")
    )
}

/// Runs every cell in turn into `report`. A cell that cannot run ends the bench, but not the record
/// of the cells before it: its failure goes into the report, and its error is returned.
async fn run_cells(
    args: &BenchArgs,
    plan: &Plan,
    nodes: &[Database],
    report: &mut BenchReport,
) -> Option<ExperimentError> {
    let mut progress = Progress::new(plan, std::io::stderr().is_terminal());
    for &strategy in &plan.strategies {
        for &workers in &plan.workers {
            let experiment = Experiment {
                stop: StopAfter::Duration { warmup: plan.warmup, measure: plan.duration },
                target: args.post.map_or(Target::FreshPost, Target::Post),
                retry: plan.retry,
                lock_retries: args.lock_retries,
                ..Experiment::new(strategy, workers, 1)
            };
            match progress.run_cell(nodes, &experiment).await {
                Ok(outcome) => {
                    let cell = BenchCell::from_outcome(&outcome);
                    progress.cell_done(&cell);
                    report.cells.push(cell);
                }
                Err(err) => {
                    progress.abandon();
                    report.failure = Some(CellFailure::new(strategy, workers, &err));
                    return Some(err);
                }
            }
        }
    }
    progress.finish();
    None
}

/// "1 strategy", "8 strategies".
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(1, "strategy", "strategies"), "1 strategy");
        assert_eq!(count(2, "strategy", "strategies"), "2 strategies");
        assert_eq!(count(0, "worker count", "worker counts"), "0 worker counts");
    }
}
