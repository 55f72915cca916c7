//! PostgreSQL's transaction statements in a spec, said the way another backend says them, so one spec
//! file runs everywhere. Only these are translated; any other statement a backend refuses is that
//! step's error, as it would be for a user typing it.
//!
//! - MariaDB: `BEGIN [WORK | TRANSACTION] ISOLATION LEVEL x` and `START TRANSACTION ISOLATION LEVEL x`
//!   become `SET TRANSACTION ISOLATION LEVEL x; START TRANSACTION` (MariaDB's `START TRANSACTION`
//!   takes no level; `SET TRANSACTION` sets it for the next transaction only); `BEGIN TRANSACTION`
//!   becomes `START TRANSACTION`.
//! - SQLite: every `BEGIN ... ISOLATION LEVEL x` and `START TRANSACTION ...` becomes `BEGIN` (a
//!   deferred transaction), and `SET TRANSACTION ...` is dropped. SQLite has no levels: in WAL mode
//!   every transaction reads one snapshot and writes alone, so it is serializable at any level asked.
//!   Not `BEGIN IMMEDIATE`, even for SERIALIZABLE: it takes the write lock at `BEGIN`, so a second
//!   transaction would be refused there rather than at the step where it conflicts (a spec for SQLite
//!   only can say `BEGIN IMMEDIATE` itself).
//!
//! A level can also be given ([`translate_at`]): then every statement that opens a transaction opens
//! it at that level instead, in the words [`Level`] has for it (MariaDB's `SET SESSION TRANSACTION
//! ...; BEGIN`, with `innodb_snapshot_isolation` where the level says so; SQLite's `BEGIN DEFERRED` or
//! `BEGIN IMMEDIATE`). That is how racelab's anomaly suite runs each Hermitage spec at every level.
//!
//! What was translated is said in the output ([`Translated::notes`]).

use super::level::Level;
use super::model::Spec;
use super::split::statements;
use crate::Backend;

/// A spec as it runs on one backend.
#[derive(Debug, Clone)]
pub struct Translated {
    pub spec: Spec,
    /// One line per distinct statement translated: `MariaDB: "BEGIN ISOLATION LEVEL READ COMMITTED"
    /// runs as "SET TRANSACTION ...; START TRANSACTION"`.
    pub notes: Vec<String>,
}

/// `spec` for `backend` (unchanged on PostgreSQL).
pub fn translate(spec: &Spec, backend: Backend) -> Translated {
    translate_at(spec, backend, None)
}

/// `spec` for `backend`, each transaction opened at `level` (one of `backend`'s) when one is given.
pub fn translate_at(spec: &Spec, backend: Backend, level: Option<Level>) -> Translated {
    let mut notes = Vec::new();
    let mut spec = spec.clone();
    if backend == Backend::Postgres && level.is_none() {
        return Translated { spec, notes };
    }
    let mut each = |sql: &mut String| {
        if let Some(text) = translate_sql(sql, backend, level, &mut notes) {
            *sql = text;
        }
    };
    spec.setups.iter_mut().for_each(&mut each);
    spec.teardown.iter_mut().for_each(&mut each);
    for session in &mut spec.sessions {
        session.setup.iter_mut().for_each(&mut each);
        session.teardown.iter_mut().for_each(&mut each);
        session.steps.iter_mut().for_each(|step| each(&mut step.sql));
    }
    Translated { spec, notes }
}

/// `sql` with its transaction statements translated, or `None` when none needed it (the text is then
/// kept as written, comments and layout included).
fn translate_sql(sql: &str, backend: Backend, level: Option<Level>, notes: &mut Vec<String>) -> Option<String> {
    let parts = statements(sql);
    let mut changed = false;
    let mut out = Vec::with_capacity(parts.len());
    for statement in parts {
        let to = match level {
            Some(level) if opens_transaction(statement) => Some(level.begin_sql().to_owned()),
            _ => translate_statement(statement, backend),
        };
        match to {
            Some(to) => {
                changed = true;
                let name = match (backend, level) {
                    (_, Some(level)) => format!("{} {}", backend_name(backend), level.name()),
                    _ => backend_name(backend).to_owned(),
                };
                let shown = if to.is_empty() { "nothing (dropped)".to_owned() } else { format!("\"{to}\"") };
                let note = format!("{name}: \"{}\" runs as {shown}", one_line(statement));
                if !notes.contains(&note) {
                    notes.push(note);
                }
                if !to.is_empty() {
                    out.push(to);
                }
            }
            None => out.push(statement.to_owned()),
        }
    }
    changed.then(|| if out.is_empty() { String::new() } else { format!("{};", out.join("; ")) })
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "PostgreSQL",
        Backend::MySql => "MariaDB",
        Backend::Sqlite => "SQLite",
    }
}

/// Whether `statement` opens a transaction (`BEGIN ...`, `START TRANSACTION ...`).
fn opens_transaction(statement: &str) -> bool {
    let mut words = statement.split_whitespace().map(str::to_ascii_uppercase);
    match words.next().as_deref() {
        Some("BEGIN") => true,
        Some("START") => words.next().as_deref() == Some("TRANSACTION"),
        _ => false,
    }
}

fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The backend's form of `statement` (empty: nothing to run), or `None` to run it as written.
fn translate_statement(statement: &str, backend: Backend) -> Option<String> {
    let words: Vec<String> = statement
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let (opening, rest) = match words.as_slice() {
        ["BEGIN", "WORK" | "TRANSACTION", rest @ ..] => (true, rest),
        ["BEGIN", rest @ ..] => (true, rest),
        ["START", "TRANSACTION", rest @ ..] => (true, rest),
        ["SET", "TRANSACTION", rest @ ..] => (false, rest),
        _ => return None,
    };
    let level = level(rest);
    let access = ["READ ONLY", "READ WRITE"].into_iter().find(|mode| rest.windows(2).any(|w| w.join(" ") == *mode));
    match backend {
        Backend::Postgres => None,
        Backend::MySql => {
            if !opening {
                return None;
            }
            let start = match access {
                Some(mode) => format!("START TRANSACTION {mode}"),
                None => "START TRANSACTION".to_owned(),
            };
            match level {
                Some(level) => Some(format!("SET TRANSACTION ISOLATION LEVEL {level}; {start}")),
                // A plain BEGIN is MariaDB's own; BEGIN TRANSACTION and modes are not.
                None if words.len() > 1 && words[..2] != ["BEGIN", "WORK"] => Some(start),
                None => None,
            }
        }
        Backend::Sqlite => {
            if !opening {
                return Some(String::new());
            }
            let plain = matches!(
                words.as_slice(),
                ["BEGIN"] | ["BEGIN", "DEFERRED" | "IMMEDIATE" | "EXCLUSIVE" | "TRANSACTION"]
            );
            if plain { None } else { Some("BEGIN".to_owned()) }
        }
    }
}

/// The isolation level named after `ISOLATION LEVEL` in `words`.
fn level(words: &[&str]) -> Option<&'static str> {
    let at = words.windows(2).position(|w| w == ["ISOLATION", "LEVEL"])? + 2;
    match words.get(at..)? {
        ["READ", "UNCOMMITTED", ..] => Some("READ UNCOMMITTED"),
        ["READ", "COMMITTED", ..] => Some("READ COMMITTED"),
        ["REPEATABLE", "READ", ..] => Some("REPEATABLE READ"),
        ["SERIALIZABLE", ..] => Some("SERIALIZABLE"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::translate_sql;
    use crate::Backend;
    use crate::spec::Level;

    fn on(backend: Backend, sql: &str) -> (Option<String>, Vec<String>) {
        let mut notes = Vec::new();
        (translate_sql(sql, backend, None, &mut notes), notes)
    }

    fn at(level: Level, backend: Backend, sql: &str) -> (Option<String>, Vec<String>) {
        let mut notes = Vec::new();
        (translate_sql(sql, backend, Some(level), &mut notes), notes)
    }

    #[test]
    fn a_level_given_opens_every_transaction_at_it_in_the_backends_words() {
        let (sql, notes) = at(Level::MyRepeatableReadSnapshot, Backend::MySql, "BEGIN ISOLATION LEVEL READ COMMITTED;");
        assert_eq!(
            sql.as_deref(),
            Some(
                "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
                 SET SESSION innodb_snapshot_isolation = ON; BEGIN;"
            )
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("MariaDB repeatable read + innodb_snapshot_isolation: \"BEGIN"), "{notes:?}");
        let (sql, _) = at(Level::SqliteImmediate, Backend::Sqlite, "begin; SELECT 1");
        assert_eq!(sql.as_deref(), Some("BEGIN IMMEDIATE; SELECT 1;"));
        let (sql, _) = at(Level::PgSerializable, Backend::Postgres, "START TRANSACTION ISOLATION LEVEL READ COMMITTED");
        assert_eq!(sql.as_deref(), Some("BEGIN ISOLATION LEVEL SERIALIZABLE;"));
        assert_eq!(at(Level::PgSerializable, Backend::Postgres, "COMMIT").0, None);
    }

    #[test]
    fn mariadb_sets_the_level_for_the_next_transaction_then_starts_it() {
        let (sql, notes) = on(Backend::MySql, "BEGIN ISOLATION LEVEL REPEATABLE READ;");
        assert_eq!(sql.as_deref(), Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION;"));
        assert_eq!(
            notes,
            ["MariaDB: \"BEGIN ISOLATION LEVEL REPEATABLE READ\" runs as \
              \"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION\""]
        );
        let (sql, _) = on(Backend::MySql, "start transaction isolation level serializable, read only; SELECT 1");
        assert_eq!(
            sql.as_deref(),
            Some("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; START TRANSACTION READ ONLY; SELECT 1;")
        );
        assert_eq!(on(Backend::MySql, "BEGIN TRANSACTION").0.as_deref(), Some("START TRANSACTION;"));
    }

    #[test]
    fn what_a_backend_says_itself_is_kept_as_written() {
        for sql in
            ["BEGIN;", "BEGIN WORK", "COMMIT;", "SET TRANSACTION ISOLATION LEVEL READ COMMITTED", "UPDATE t SET v = 1"]
        {
            assert_eq!(on(Backend::MySql, sql), (None, vec![]), "{sql}");
        }
        for sql in ["BEGIN;", "BEGIN IMMEDIATE", "SELECT 'BEGIN ISOLATION LEVEL SERIALIZABLE'"] {
            assert_eq!(on(Backend::Sqlite, sql), (None, vec![]), "{sql}");
        }
        assert_eq!(on(Backend::Postgres, "BEGIN ISOLATION LEVEL SERIALIZABLE").0, None);
    }

    #[test]
    fn sqlite_begins_a_deferred_transaction_at_every_level_and_drops_set_transaction() {
        let (sql, notes) = on(Backend::Sqlite, "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT 1;");
        assert_eq!(sql.as_deref(), Some("BEGIN; SELECT 1;"));
        assert_eq!(notes, ["SQLite: \"BEGIN ISOLATION LEVEL SERIALIZABLE\" runs as \"BEGIN\""]);
        assert_eq!(on(Backend::Sqlite, "START TRANSACTION").0.as_deref(), Some("BEGIN;"));
        let (sql, notes) = on(Backend::Sqlite, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED;");
        assert_eq!(sql.as_deref(), Some(""));
        assert_eq!(notes, ["SQLite: \"SET TRANSACTION ISOLATION LEVEL READ COMMITTED\" runs as nothing (dropped)"]);
    }
}
