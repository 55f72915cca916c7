//! Terminal tables of `racelab lab`'s outcomes: a compact form that fits an 80-column terminal, the
//! wide one, and the figures per node.
//!
//! Only lays out what each [`Outcome`](racelab_core::Outcome) says; never computes a figure or a verdict of its own (the core
//! does), so the table and the JSON cannot disagree.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use racelab_core::Outcome;

use super::text::{COMPACT_WIDTH, StackedRow, short_ms, stacked, wrap};

/// The figures of the compact form, after the strategy's name.
const COMPACT_HEADER: [&str; 7] = ["expected", "actual", "lost", "failed", "retries", "incr/s", "p99 ms"];

/// One line of figures per experiment, its verdict below it, wrapped and indented: every line within
/// [`COMPACT_WIDTH`] columns for any strategy name and ordinary figures, so nothing splits a name or
/// slices a verdict the way a table squeezed into a narrow terminal does. `--wide` has every column.
pub fn compact(outcomes: &[Outcome]) -> String {
    let rows: Vec<StackedRow> = outcomes
        .iter()
        .map(|o| StackedRow {
            name: o.strategy.name(),
            figures: vec![
                o.expected.to_string(),
                o.actual.map_or_else(|| "?".to_owned(), |a| a.to_string()),
                o.lost.map_or_else(|| "?".to_owned(), |l| l.to_string()),
                o.failed.to_string(),
                o.retries.to_string(),
                format!("{:.0}", o.throughput_per_s),
                short_ms(o.latency_ms.p99),
            ],
            notes: vec![o.verdict()],
        })
        .collect();
    stacked(&COMPACT_HEADER, &rows)
}

/// Every column, one row per experiment, never wrapped (`racelab lab --wide`).
pub fn outcomes(outcomes: &[Outcome]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
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
            o.actual.map_or_else(|| "?".to_owned(), |a| a.to_string()),
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

/// Each strategy's figures per node, when the workers were spread over several: who acknowledged,
/// who failed, who was left in doubt, and what each node's retries were. Fits 80 columns (the error
/// kinds wrap under their row).
pub fn per_node(outcomes: &[Outcome]) -> String {
    per_node_of(&outcomes.iter().map(|o| (o.strategy.name(), o.nodes.as_slice())).collect::<Vec<_>>())
}

/// [`per_node`] for any run's figures per node: each strategy's name and its nodes (the workloads'
/// tables use it too).
pub fn per_node_of(outcomes: &[(&str, &[racelab_core::NodeOutcome])]) -> String {
    let mut out = String::from("per node (numbered as in the header):");
    let name_width = outcomes.iter().map(|(name, _)| name.len()).chain(["strategy".len()]).max().unwrap_or(0);
    out.push_str(&format!(
        "\n{:<name_width$}  {:>4} {:>7} {:>7} {:>6} {:>8}",
        "strategy", "node", "acked", "failed", "doubt", "retries"
    ));
    for (name, nodes) in outcomes {
        for node in *nodes {
            out.push_str(&format!(
                "\n{:<name_width$}  {:>4} {:>7} {:>7} {:>6} {:>8}",
                name, node.node, node.acknowledged, node.failed, node.in_doubt, node.retries
            ));
            let kinds = |counts: &std::collections::BTreeMap<racelab_core::ErrorKind, u64>| {
                counts.iter().map(|(kind, n)| format!("{kind}: {n}")).collect::<Vec<_>>().join(", ")
            };
            for (label, counts) in [("failed", &node.errors), ("retried", &node.retried_errors)] {
                if !counts.is_empty() {
                    for line in wrap(&format!("{label}: {}", kinds(counts)), COMPACT_WIDTH - 4) {
                        out.push_str("\n    ");
                        out.push_str(&line);
                    }
                }
            }
        }
    }
    out
}
