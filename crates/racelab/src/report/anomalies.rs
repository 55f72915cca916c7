//! The matrix `racelab anomalies` prints: case x isolation level, each cell what was measured next to
//! Hermitage's published result, then a legend and every cell that differs.
//!
//! Renders a [`Matrix`](racelab_core::anomalies::Matrix) the core measured; never runs a case or changes a verdict, and stays within
//! 80 columns (but for the URLs it names).

use racelab_core::ErrorKind;
use racelab_core::anomalies::{Cell, How, Matrix, Published, Verdict};

use super::text::COMPACT_WIDTH;

/// Width of the case column.
const CASE_WIDTH: usize = 11;
/// Width of what was measured in a cell ("ANOMALY", "blk@4", "busy@13").
const RESULT_WIDTH: usize = 8;

/// The matrix, its legend and the cells that differ from Hermitage's, in 80 columns.
pub fn render(matrix: &Matrix) -> String {
    let mut lines = vec![format!("racelab anomalies: {}", matrix.server_version)];
    match matrix.urls.as_slice() {
        [one] => lines.push(one.clone()),
        nodes => {
            lines.push("T1, T2, T3 of each case on these Galera nodes, in turn:".to_owned());
            lines.extend(nodes.iter().map(|n| format!("  {n}")));
        }
    }
    lines.push(String::new());
    let mut header = format!("{:<CASE_WIDTH$}", "case");
    for column in &matrix.columns {
        header.push_str(&format!("{:<width$}", column.level.short(), width = RESULT_WIDTH + 4));
    }
    lines.push(header.trim_end().to_owned());
    let cases = matrix.columns.iter().find(|c| c.unavailable.is_none()).map(|c| c.cells.len()).unwrap_or(0);
    for row in 0..cases {
        let mut line = String::new();
        for (i, column) in matrix.columns.iter().enumerate() {
            if i == 0 {
                let name = column.cells.get(row).map_or("", |c| c.case.name());
                line.push_str(&format!("{name:<CASE_WIDTH$}"));
            }
            line.push_str(&format!("{} ", cell_text(column.cells.get(row))));
        }
        lines.push(line.trim_end().to_owned());
    }
    lines.push(String::new());
    lines.extend(legend(matrix));
    lines.extend(comparison(matrix));
    lines.join("\n")
}

/// A cell: what was measured, Hermitage's mark, and `!` where they disagree.
fn cell_text(cell: Option<&Cell>) -> String {
    let Some(cell) = cell else {
        return format!("{:<width$}", "n/a", width = RESULT_WIDTH + 3);
    };
    let mark = cell.hermitage.map_or(" ", |e| e.published.mark());
    let flag = if cell.differs_from_hermitage { "!" } else { " " };
    format!("{:<RESULT_WIDTH$} {mark}{flag}", measured(cell))
}

/// "ANOMALY" where it happened; else how it was prevented.
fn measured(cell: &Cell) -> String {
    if cell.verdict == Verdict::Anomaly {
        return "ANOMALY".to_owned();
    }
    match &cell.how {
        How::Nothing => "ok".to_owned(),
        How::Blocked { step, .. } => format!("blk@{step}"),
        How::Error { step, kind, .. } => format!("{}@{step}", short_kind(*kind)),
    }
}

fn short_kind(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::SerializationFailure => "ser",
        ErrorKind::Deadlock => "dl",
        ErrorKind::Busy => "busy",
        ErrorKind::LockTimeout => "lkto",
        ErrorKind::LockNotAvailable => "nowait",
        ErrorKind::ConnectionLost => "lost",
        _ => "err",
    }
}

fn legend(matrix: &Matrix) -> Vec<String> {
    let levels: Vec<String> =
        matrix.columns.iter().map(|c| format!("{} = {}", c.level.short(), c.level.name())).collect();
    let mut lines = vec![
        "ANOMALY: it happened. Otherwise how it was prevented: ok = by what each".to_owned(),
        "transaction saw (a snapshot); blk@N = step N waited for a lock until the".to_owned(),
        "other transaction ended; ser@N, dl@N, busy@N = step N failed with a".to_owned(),
        "serialization failure, a deadlock, SQLite busy. Steps count the BEGINs;".to_owned(),
        "--json shows each step's SQL.".to_owned(),
    ];
    lines.extend(wrap(&format!("Levels: {}.", levels.join(", "))));
    for column in &matrix.columns {
        if let Some(why) = &column.unavailable {
            lines.extend(wrap(&format!("{} was not run: {why}", column.level.name())));
        }
    }
    lines
}

/// Hermitage's verdicts, and every cell this run disagrees with.
fn comparison(matrix: &Matrix) -> Vec<String> {
    let source = matrix.columns.iter().flat_map(|c| &c.cells).find_map(|cell| cell.hermitage.map(|e| e.source));
    let Some(source) = source else {
        return wrap(&format!(
            "Hermitage (ept/hermitage) published no results for {}.",
            matrix.server_version.split_whitespace().next().unwrap_or("this database")
        ));
    };
    let mariadb = matrix.server_version.starts_with("MariaDB");
    let mut lines = wrap(&format!(
        "Mark after a cell: Hermitage's result for {source}{}: ✓ prevented, — not prevented, R prevented \
         for a read-only reader only (PMP and G-single; their write forms have rows of their own); ! = this \
         run differs; blank = none published.",
        if mariadb { " (Hermitage has no MariaDB: compared with MySQL)" } else { "" }
    ));
    let differences: Vec<_> = matrix.differences().collect();
    if differences.is_empty() {
        lines.extend(wrap(&format!("Every cell agrees with Hermitage's published {source} results.")));
    }
    for (level, cell) in differences {
        let published = match cell.hermitage.map(|e| e.published) {
            Some(Published::Anomaly) => "not prevented",
            _ => "prevented",
        };
        let measured = match cell.verdict {
            Verdict::Anomaly => "anomaly".to_owned(),
            Verdict::Prevented => format!("prevented ({})", measured(cell)),
        };
        lines.extend(wrap(&format!(
            "Differs: {} at {level}: {measured} here; Hermitage's {source}: {published}{}.",
            cell.case,
            match (mariadb, matrix.urls.len() > 1) {
                (true, true) => " (Galera nodes vs one MySQL server)",
                (true, false) => " (MariaDB vs MySQL)",
                _ => "",
            }
        )));
    }
    lines
}

/// Wraps a sentence at 80 columns.
fn wrap(text: &str) -> Vec<String> {
    super::text::wrap(text, COMPACT_WIDTH)
}
