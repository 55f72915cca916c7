//! The bench's progress on stderr: a time-based bar on a terminal, one plain line per cell otherwise.
//!
//! Only shows: never decides what runs next, and never writes to stdout (the table goes there).

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use racelab_core::{Database, Experiment, Outcome};

use super::plan::Plan;
use crate::report::bench::BenchCell;
use crate::report::bench_table;
use crate::report::text::{COMPACT_WIDTH, short_ms, wrap};

/// A progress bar on a terminal (time-based, so its ETA is right), plain lines otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    per_cell_ms: u64,
    cells: usize,
    done: usize,
}

impl Progress {
    pub fn new(plan: &Plan, terminal: bool) -> Self {
        let per_cell_ms = u64::try_from(plan.per_cell().as_millis()).unwrap_or(u64::MAX);
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(per_cell_ms.saturating_mul(plan.cells() as u64)),
                ProgressDrawTarget::stderr(),
            );
            // The bar takes what the terminal's width leaves, so the line never wraps at 80 columns.
            if let Ok(style) =
                ProgressStyle::with_template("{wide_bar:.cyan/blue} {percent:>3}% eta {eta:<4} {prefix} {msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Self { bar, per_cell_ms, cells: plan.cells(), done: 0 }
    }

    /// Runs one cell, moving the bar along with the clock while it runs.
    pub async fn run_cell(
        &self,
        nodes: &[Database],
        experiment: &Experiment,
    ) -> Result<Outcome, racelab_core::ExperimentError> {
        let label = format!("{} x {}", experiment.strategy, workers(experiment.workers));
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

    pub fn cell_done(&mut self, cell: &BenchCell) {
        self.done += 1;
        let line = cell_line(cell);
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.per_cell_ms.saturating_mul(self.done as u64));
                bar.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    pub fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// "1 worker", "8 workers".
fn workers(n: usize) -> String {
    format!("{n} {}", if n == 1 { "worker" } else { "workers" })
}

/// One finished cell within 80 columns: its figures and `ok` when the row holds every acknowledged
/// increment and none failed; otherwise what went wrong, on lines of their own below.
fn cell_line(cell: &BenchCell) -> String {
    let notes = bench_table::notes(cell);
    let mut line = format!(
        "  {:<23} {:>11} {:>7.0}/s  p99 {:>5} ms  {:>4.2} retries  {}",
        cell.strategy.name(),
        workers(cell.workers),
        cell.throughput_per_s,
        short_ms(cell.latency_ms.p99),
        cell.retries_per_increment,
        if notes.is_empty() { "ok" } else { "" },
    );
    line.truncate(line.trim_end().len());
    for note in notes.iter().flat_map(|note| wrap(note, COMPACT_WIDTH - 6)) {
        line.push_str("\n      ");
        line.push_str(&note);
    }
    line
}
