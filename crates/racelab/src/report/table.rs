//! Terminal tables.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use racelab_core::Outcome;

/// One row per experiment: what was expected, what the database holds, and the verdict.
pub fn outcomes(outcomes: &[Outcome]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header([
        "strategy",
        "expected",
        "actual",
        "lost",
        "failed",
        "retries",
        "elapsed ms",
        "incr/s",
        "p99 ms",
        "verdict",
    ]);
    for o in outcomes {
        let lost = o.lost.map_or_else(|| "?".to_owned(), |l| l.to_string());
        let numbers = [
            o.expected.to_string(),
            o.actual.to_string(),
            lost,
            o.failed.to_string(),
            o.retries.to_string(),
            format!("{:.1}", o.elapsed_ms),
            format!("{:.0}", o.throughput_per_s),
            format!("{:.2}", o.latency_ms.p99),
        ];
        let mut row = vec![Cell::new(o.strategy.name())];
        row.extend(numbers.into_iter().map(|n| Cell::new(n).set_alignment(CellAlignment::Right)));
        row.push(Cell::new(o.verdict()));
        table.add_row(row);
    }
    table
}
