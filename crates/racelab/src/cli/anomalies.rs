//! `racelab anomalies`: Hermitage's isolation tests on every isolation level of one database, as a
//! matrix case x level next to Hermitage's published results, or one JSON document with every step.
//!
//! `racelab anomalies --database-url postgres://postgres@127.0.0.1:5432/postgres`
//!
//! The suite itself is the core's (`racelab_core::anomalies`); this module checks the flags, proves
//! each node accepts a connection, and renders the matrix. It never runs the user's `--init-sql`: each
//! isolation level sets its own session.

use clap::Args;
use racelab_core::ErrorKind;
use racelab_core::anomalies::{self, Cell, How, Matrix, Published, Verdict};

use super::failure::Failure;
use super::output::say;
use crate::config::DatabaseArgs;

#[derive(Debug, Args)]
pub struct AnomaliesArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Print one JSON document (every cell, with each step's SQL, answer, rows and error) instead
    /// of the table.
    #[arg(long)]
    pub json: bool,
}

/// One debug span per run; `skip_all` because the arguments hold the database URL, password included.
#[tracing::instrument(level = "debug", name = "anomalies", skip_all, fields(json = args.json))]
pub async fn run(args: AnomaliesArgs) -> Result<(), Failure> {
    if !args.database.init_sql.is_empty() {
        // Each level sets its own session variables; a statement of the user's could change them.
        return Err(Failure::usage("--init-sql does not apply to anomalies: each level sets its own session"));
    }
    let nodes = args.database.connect_options_each(1)?;
    if nodes.len() > 1 && nodes[0].url.backend() != racelab_core::Backend::MySql {
        return Err(Failure::usage("several --database-url are the nodes of one MariaDB Galera cluster"));
    }
    // The suite opens its own raw connections and would report a refusal in the driver's words ("error
    // returned from database ... at line 948"), as if nothing had answered. One connection per node
    // first, as `lab` makes it, names a denied access, a missing database or no connection left, with
    // the hint that applies.
    for node in &nodes {
        let probe = racelab_core::ConnectOptions { migrate: false, ..node.clone() };
        racelab_core::Database::connect(probe).await?.close().await;
    }
    let urls: Vec<_> = nodes.iter().map(|o| o.url.clone()).collect();
    let levels = racelab_core::anomalies::Level::of(urls[0].backend());
    let matrix = anomalies::run_cases(&urls, nodes[0].lock_timeout, levels, &anomalies::Case::ALL)
        .await
        .map_err(Failure::runtime_from)?;
    if args.json {
        let json = serde_json::to_string_pretty(&matrix)
            .map_err(|err| Failure::runtime(format!("cannot write JSON: {err}")).because(err))?;
        return say(json);
    }
    say(render(&matrix))
}

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
    crate::report::text::wrap(text, crate::report::text::COMPACT_WIDTH)
}
