//! The terminal table of one workload in `racelab lab --workload W`: the invariant in one sentence,
//! then a line of figures per strategy with its verdict below it, within 80 columns.
//!
//! Only lays out what each [`WorkloadOutcome`] says: the verdict and the invariant are the core's.

use racelab_core::{Workload, WorkloadOutcome};

use super::text::{COMPACT_WIDTH, StackedRow, short_ms, stacked, wrap};

const HEADER: [&str; 7] = ["expected", "done", "refused", "failed", "retries", "ops/s", "p99 ms"];

/// "stock (invariant no-oversell: ...)" and one stacked row per strategy.
pub fn compact(workload: Workload, outcomes: &[WorkloadOutcome]) -> String {
    let title = format!("{workload}: invariant {}: {}", workload.invariant(), workload.invariant_sentence());
    let rows: Vec<StackedRow> = outcomes
        .iter()
        .map(|o| StackedRow {
            name: o.strategy,
            figures: vec![
                o.expected.to_string(),
                o.acknowledged.to_string(),
                o.refused.to_string(),
                o.failed.to_string(),
                o.retries.to_string(),
                format!("{:.0}", o.throughput_per_s),
                short_ms(o.latency_ms.p99),
            ],
            notes: vec![format!("{}: {}", held(o), o.verdict())],
        })
        .collect();
    format!("{}\n{}", wrap(&title, COMPACT_WIDTH).join("\n"), stacked(&HEADER, &rows))
}

/// What the invariant's verdict means for this strategy: held, broken as the unsafe strategy is
/// meant to show, VIOLATED by a strategy meant to keep it, or unknown.
fn held(outcome: &WorkloadOutcome) -> &'static str {
    match (outcome.invariant.held, outcome.safe) {
        (Some(true), _) => "held",
        (Some(false), false) => "broken (unsafe, as expected)",
        (Some(false), true) => "VIOLATED",
        (None, _) => "unknown",
    }
}
