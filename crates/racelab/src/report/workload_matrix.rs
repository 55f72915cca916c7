//! The workload matrix as Markdown (`racelab matrix`, `docs/workloads.md`): per workload, one row per
//! strategy and one column per database and isolation level, each cell what the forced race did to
//! the invariant; under each table, the strategies that held everywhere on each database, and where
//! the behaviour is documented.
//!
//! Only drawing: the runs are made by `cli/matrix.rs`, and every figure comes from their outcomes.

use std::fmt::Write as _;

use racelab_core::{Isolation, Workload, WorkloadOutcome};

/// A group of columns: one database (or one configuration of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Postgres,
    MariaDb,
    /// MariaDB with `innodb_snapshot_isolation = ON`.
    MariaDbSnapshot,
    Sqlite,
    /// A MariaDB Galera cluster, the workers spread over its nodes.
    Galera,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Postgres => "PostgreSQL",
            Target::MariaDb => "MariaDB",
            Target::MariaDbSnapshot => "MariaDB, snapshot isolation on",
            Target::Sqlite => "SQLite",
            Target::Galera => "Galera, across the nodes",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Target::Postgres => "PG",
            Target::MariaDb => "Maria",
            Target::MariaDbSnapshot => "Maria+SI",
            Target::Sqlite => "SQLite",
            Target::Galera => "Galera",
        }
    }
}

/// One column: a database and the level its runs used.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub target: Target,
    /// `None`: the database's only kind of transaction (SQLite).
    pub level: Option<Isolation>,
}

impl Column {
    fn header(self) -> String {
        let level = match self.level {
            None => return self.target.short().to_owned(),
            Some(Isolation::ReadUncommitted) => "ru",
            Some(Isolation::ReadCommitted) => "rc",
            Some(Isolation::RepeatableRead) => "rr",
            Some(Isolation::Serializable) => "ser",
        };
        format!("{} {level}", self.target.short())
    }
}

/// What one run gave.
#[derive(Debug)]
pub enum Cell {
    Ran(Box<WorkloadOutcome>),
    /// The run could not start (a strategy the database does not offer, a refused setting): why.
    NotRun(String),
}

impl Cell {
    fn held(&self) -> bool {
        matches!(self, Cell::Ran(outcome) if outcome.invariant.held == Some(true))
    }

    fn text(&self) -> String {
        let Cell::Ran(outcome) = self else { return "not run".to_owned() };
        let failed = if outcome.failed > 0 { format!(" ({} failed)", outcome.failed) } else { String::new() };
        match (outcome.invariant.held, outcome.invariant.violations) {
            (Some(true), _) => format!("✓{failed}"),
            (Some(false), Some(n)) => format!("**✗ {n}**{failed}"),
            _ => "unread".to_owned(),
        }
    }
}

/// Every run of one `racelab matrix`.
#[derive(Debug)]
pub struct Matrix {
    pub workers: usize,
    pub operations: u64,
    pub columns: Vec<Column>,
    /// (column, workload, strategy, what the run gave), in the order they ran.
    pub cells: Vec<(usize, Workload, &'static str, Cell)>,
    /// Each database's version, as it reports it.
    pub versions: Vec<(Target, String)>,
}

impl Matrix {
    fn cell(&self, column: usize, workload: Workload, strategy: &str) -> Option<&Cell> {
        self.cells.iter().find(|(c, w, s, _)| *c == column && *w == workload && *s == strategy).map(|(.., cell)| cell)
    }
}

/// Where a workload's behaviour is documented (the anchors the runs agree or disagree with). By
/// name, so a workload added later says "see Hermitage" until it is given its own line here.
fn references(workload: Workload) -> &'static str {
    match workload.name() {
        "counter" => {
            "read-then-write is Hermitage's lost update (P4): PostgreSQL read committed and MariaDB \
             repeatable read let it through, PostgreSQL repeatable read aborts the second writer (40001), \
             MariaDB's `innodb_snapshot_isolation` refuses it (1020); `atomic` (`SET like = like + 1`) needs \
             no level. Across Galera nodes certification aborts two writes of the row that overlap (1213), \
             but not a read-then-write whose write follows the other's commit (MDEV-38977): lost at every \
             level below serializable unless snapshot isolation is on (docs/anomalies.md, \"r+w late\")."
        }
        "stock" => {
            "read-check-write is Hermitage's lost update (P4): PostgreSQL read committed and MariaDB \
             repeatable read let it through, PostgreSQL repeatable read aborts the second writer (40001), \
             MariaDB's `innodb_snapshot_isolation` refuses it (1020; on by default from 11.6.2, MDEV-35124); \
             Galera's certification lets it through even in a healthy cluster (MDEV-38977)."
        }
        "transfer" => {
            "locks taken in opposite orders deadlock (40P01, 1213): lock both rows in key order; Jepsen's \
             bank workload checks the same invariant (total conserved, no negative balance)."
        }
        "oncall" => {
            "write skew, Hermitage's G2-item: not prevented at PostgreSQL or MySQL/MariaDB repeatable read; \
             PostgreSQL SERIALIZABLE prevents it, as do `FOR UPDATE` on the rows read and a materialized \
             count row; MariaDB's snapshot isolation checks only rows written or locked. Across Galera nodes \
             `FOR UPDATE` and SERIALIZABLE lock only on the node that takes them, and certification compares \
             only the rows written (two doctors' rows): the skew passes whenever the two commits race (a shift \
             left uncovered in 3 of 10 raced `pessimistic` runs and 8 of 10 `serializable` runs here); only the \
             materialized count row, written by both, is certified against."
        }
        "booking" => {
            "check-then-insert is a phantom (G2): a unique key on (room, slot), a lock on the room's row or \
             SERIALIZABLE prevent it; PostgreSQL also offers `EXCLUDE USING gist` for ranges. Across Galera \
             nodes SERIALIZABLE's read locks are the node's own and two bookings insert two rows certification \
             does not compare: only the unique key and the room's row (`pessimistic` writes it) are certified."
        }
        "queue" => {
            "`FOR UPDATE SKIP LOCKED` (PostgreSQL, MySQL 8, MariaDB 10.6+); SQLite has no row locks: \
             `UPDATE ... RETURNING` under `BEGIN IMMEDIATE` (Django's `select_for_update` is silently \
             nothing there)."
        }
        _ => "Hermitage (github.com/ept/hermitage) and the PostgreSQL documentation, chapter 13.2.",
    }
}

/// The Markdown document.
pub fn render(matrix: &Matrix) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Workloads: which fix holds on which database\n");
    let _ = writeln!(
        out,
        "Generated by `racelab matrix` (see the README, \"Workloads\"). Each cell is one run of {} workers x {} \
         operations with the race forced (`--force-race`: every worker reads before any writes, on its \
         first operation), its invariant proven from the database's own rows afterwards: ✓ held, **✗ N** \
         broke with N violations; \"(n failed)\" counts operations the database refused (an unsafe body \
         aborted by the level, not retried).\n",
        matrix.workers, matrix.operations
    );
    for (target, version) in &matrix.versions {
        // PostgreSQL's `version()` goes on with the compiler that built it: its first two words say it.
        let version: Vec<&str> = version.split_whitespace().take(2).collect();
        let _ = writeln!(out, "- {}: {}", target.name(), version.join(" "));
    }
    let workloads = matrix.cells.iter().fold(Vec::<Workload>::new(), |mut seen, (_, w, ..)| {
        if !seen.contains(w) {
            seen.push(*w);
        }
        seen
    });
    for workload in workloads {
        let _ = writeln!(out, "\n## `{workload}`: {}\n", workload.invariant());
        let _ = writeln!(out, "{}.\n", capitalized(workload.invariant_sentence()));
        let headers: Vec<String> = matrix.columns.iter().map(|c| c.header()).collect();
        let _ = writeln!(out, "| strategy | {} |", headers.join(" | "));
        let _ = writeln!(out, "| --- |{}", " --- |".repeat(headers.len()));
        for strategy in workload.strategies() {
            let safe = if workload.is_safe(strategy) == Some(true) { "" } else { " (unsafe)" };
            let cells: Vec<String> = (0..matrix.columns.len())
                .map(|c| matrix.cell(c, workload, strategy).map_or_else(String::new, Cell::text))
                .collect();
            let _ = writeln!(out, "| `{strategy}`{safe} | {} |", cells.join(" | "));
        }
        let _ = writeln!(out);
        for (target, _) in &matrix.versions {
            let columns: Vec<usize> =
                (0..matrix.columns.len()).filter(|c| matrix.columns[*c].target == *target).collect();
            let across_nodes = *target == Target::Galera;
            let safe_here = |s: &&str| {
                let safe = if across_nodes { workload.is_safe_across_nodes(s) } else { workload.is_safe(s) };
                safe == Some(true)
            };
            let quoted = |names: Vec<&str>| names.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
            let held: Vec<&str> = workload
                .strategies()
                .into_iter()
                .filter(safe_here)
                .filter(|s| columns.iter().all(|c| matrix.cell(*c, workload, s).is_some_and(Cell::held)))
                .collect();
            let held =
                if held.is_empty() { "none of the safe strategies held everywhere".to_owned() } else { quoted(held) };
            // A cell is one run; across Galera nodes a race may go either way from one run to the next.
            let caveat = if across_nodes { " (in this run)" } else { "" };
            let _ = write!(out, "- {}: held at every level{caveat}: {held}", target.name());
            let one_node_only: Vec<&str> = workload
                .strategies()
                .into_iter()
                .filter(|s| across_nodes && workload.is_safe(s) == Some(true) && !safe_here(s))
                .collect();
            if !one_node_only.is_empty() {
                let _ = write!(
                    out,
                    "; safe on one node only (their locks are the node's own and certification compares only \
                     the rows written; see Documented): {}",
                    quoted(one_node_only)
                );
            }
            let _ = writeln!(out, ".");
        }
        let _ = writeln!(out, "\nDocumented: {}", references(workload));
    }
    out
}

/// `text` with its first letter in upper case.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
