//! The table printed at the end of `racelab bench`: one row per strategy and worker count, compact
//! (80 columns) or wide.
//!
//! Lays out the figures [`bench`](crate::report::bench) computed; never computes one of its own, so the table, the
//! JSON, the CSV and the chart agree.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use super::bench::{BenchCell, BenchReport};
use super::text::{StackedRow, short_ms, stacked};

/// The figures of the compact form, after the strategy's name.
const COMPACT_HEADER: [&str; 7] = ["workers", "incr/s", "p50 ms", "p95 ms", "p99 ms", "retr/incr", "in row"];

/// Throughput, latency and retries of every cell on one line within 80 columns; whether the row holds
/// every acknowledged increment as `yes`, with a line below saying what went wrong where it did not,
/// or where increments failed. `--wide` has every column (max latency, the failures by kind).
pub fn compact(report: &BenchReport) -> String {
    let rows: Vec<StackedRow> = report
        .cells
        .iter()
        .map(|cell| {
            let holds = cell.lost == Some(0);
            StackedRow {
                name: cell.strategy.name(),
                figures: vec![
                    cell.workers.to_string(),
                    format!("{:.0}", cell.throughput_per_s),
                    short_ms(cell.latency_ms.p50),
                    short_ms(cell.latency_ms.p95),
                    short_ms(cell.latency_ms.p99),
                    format!("{:.3}", cell.retries_per_increment),
                    if holds { "yes" } else { "no" }.to_owned(),
                ],
                notes: notes(cell),
            }
        })
        .collect();
    stacked(&COMPACT_HEADER, &rows)
}

/// Throughput, latency, retries, failures and the invariant of every cell, unwrapped (`--wide`).
pub fn bench_table(report: &BenchReport) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header([
        "strategy",
        "workers",
        "incr/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "retries/incr",
        "failed",
        "actual == acknowledged",
    ]);
    for cell in &report.cells {
        let numbers = [
            cell.workers.to_string(),
            format!("{:.0}", cell.throughput_per_s),
            format!("{:.2}", cell.latency_ms.p50),
            format!("{:.2}", cell.latency_ms.p95),
            format!("{:.2}", cell.latency_ms.p99),
            format!("{:.2}", cell.latency_ms.max),
            format!("{:.3}", cell.retries_per_increment),
        ];
        let mut row = vec![Cell::new(cell.strategy.name())];
        row.extend(numbers.into_iter().map(|n| Cell::new(n).set_alignment(CellAlignment::Right)));
        row.push(Cell::new(failures(cell)));
        row.push(Cell::new(invariant(cell)));
        table.add_row(row);
    }
    table
}

/// What is said under a cell's figures: the invariant where it did not hold, the failures by kind,
/// the increments in doubt. Nothing for a cell where all went well.
pub fn notes(cell: &BenchCell) -> Vec<String> {
    let mut notes = Vec::new();
    if cell.lost != Some(0) {
        notes.push(invariant(cell));
    }
    if cell.failed > 0 {
        notes.push(format!("failed {}", failures(cell)));
    }
    if cell.in_doubt > 0 {
        notes.push(format!("{} in doubt: the answer to their commit was lost", cell.in_doubt));
    }
    notes
}

fn failures(cell: &BenchCell) -> String {
    if cell.failed == 0 { "0".to_owned() } else { format!("{} ({})", cell.failed, cell.errors_text(", ")) }
}

/// "yes (n)", or what went wrong: lost updates (expected only of `naive`), or writes that were not ours.
pub fn invariant(cell: &BenchCell) -> String {
    match cell.lost {
        Some(0) => format!("yes ({})", cell.actual.unwrap_or_default()),
        Some(lost) if !cell.safe => format!("no: lost {lost} of {}", cell.acknowledged),
        Some(lost) => {
            format!(
                "VIOLATED: {} acknowledged, {} in the row ({lost} lost)",
                cell.acknowledged,
                cell.actual.unwrap_or_default()
            )
        }
        None if cell.actual.is_none() => "unknown: the counter could not be read".to_owned(),
        None => "unknown: another writer touched the row".to_owned(),
    }
}
