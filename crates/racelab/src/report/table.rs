//! Terminal tables of lab outcomes: a compact form that fits an 80-column terminal, and the wide one.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use racelab_core::Outcome;

/// The width the compact form stays within: a default terminal's.
pub const COMPACT_WIDTH: usize = 80;

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

/// One row of a stacked table: a name, its figures, and what is said about them.
pub struct StackedRow {
    pub name: &'static str,
    pub figures: Vec<String>,
    /// Each wrapped on lines of its own below the figures, indented.
    pub notes: Vec<String>,
}

/// A table without borders: a header, then per row a line of right-aligned figures after a
/// left-aligned name (each column as wide as its widest entry) and the row's notes below it.
pub fn stacked(header: &[&str], rows: &[StackedRow]) -> String {
    let name_width = rows.iter().map(|r| r.name.len()).chain(["strategy".len()]).max().unwrap_or(0);
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter().filter_map(|r| r.figures.get(i)).map(String::len).chain([header[i].len()]).max().unwrap_or(0)
        })
        .collect();
    let line = |name: &str, figures: &mut dyn Iterator<Item = &str>| {
        let mut out = format!("{name:<name_width$} ");
        for (figure, width) in figures.zip(&widths) {
            out.push_str(&format!(" {figure:>width$}"));
        }
        out
    };
    let mut out = line("strategy", &mut header.iter().copied());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.name, &mut row.figures.iter().map(String::as_str)));
        for note_line in row.notes.iter().flat_map(|note| wrap(note, COMPACT_WIDTH - 4)) {
            out.push_str("\n    ");
            out.push_str(&note_line);
        }
    }
    out
}

/// "note: ..." wrapped to [`COMPACT_WIDTH`], continuation lines indented under the text.
pub fn note(text: &str) -> String {
    format!("note: {}", wrap(text, COMPACT_WIDTH - 6).join("\n      "))
}

/// Milliseconds with the precision that matters at that size: 0.83, 12.4, 205.
pub fn short_ms(ms: f64) -> String {
    match ms {
        ms if ms < 10.0 => format!("{ms:.2}"),
        ms if ms < 100.0 => format!("{ms:.1}"),
        ms => format!("{ms:.0}"),
    }
}

/// Splits `text` into lines of at most `width` characters at spaces (a longer word gets a line of its
/// own, unbroken).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
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
    let mut out = String::from("per node (numbered as in the header):");
    let name_width = outcomes.iter().map(|o| o.strategy.name().len()).chain(["strategy".len()]).max().unwrap_or(0);
    out.push_str(&format!(
        "\n{:<name_width$}  {:>4} {:>7} {:>7} {:>6} {:>8}",
        "strategy", "node", "acked", "failed", "doubt", "retries"
    ));
    for o in outcomes {
        for node in &o.nodes {
            out.push_str(&format!(
                "\n{:<name_width$}  {:>4} {:>7} {:>7} {:>6} {:>8}",
                o.strategy.name(),
                node.node,
                node.acknowledged,
                node.failed,
                node.in_doubt,
                node.retries
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_lines_within_the_width() {
        let text =
            "lost 3054 of 3200 updates: concurrent read-modify-writes read the same value and overwrote each other";
        let lines = wrap(text, 40);
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        assert_eq!(wrap("a-word-longer-than-the-width", 5), ["a-word-longer-than-the-width"]);
    }

    #[test]
    fn milliseconds_keep_three_significant_digits_or_so() {
        assert_eq!(short_ms(0.834), "0.83");
        assert_eq!(short_ms(12.44), "12.4");
        assert_eq!(short_ms(204.6), "205");
    }
}
