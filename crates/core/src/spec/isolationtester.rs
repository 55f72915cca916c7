//! `--format isolationtester`: the bytes PostgreSQL 15's isolationtester prints on stdout for the
//! same run, so a spec's output can be diffed with `expected/*.out`.
//!
//! Result sets are laid out as libpq's `PQprint` lays them out with isolationtester's options
//! (header, aligned, `|` between fields): each column as wide as its widest value or name, in bytes;
//! a column right-aligned when every non-empty value in it looks like a number.

use std::fmt::Write;

use super::report::{Answer, Event, SpecRun, Table};

/// The whole output of `run`, from `Parsed test spec with N sessions` on.
pub fn render(run: &SpecRun) -> String {
    let mut out = header(run.sessions.len());
    for permutation in &run.permutations {
        out.push_str(&permutation_start(&permutation.steps));
        for event in &permutation.events {
            out.push_str(&render_event(event));
        }
    }
    out
}

/// The first line.
pub fn header(sessions: usize) -> String {
    format!("Parsed test spec with {sessions} sessions\n")
}

/// The blank line and `starting permutation:` line before a permutation.
pub fn permutation_start(steps: &[String]) -> String {
    let mut out = "\nstarting permutation:".to_owned();
    for step in steps {
        out.push(' ');
        out.push_str(step);
    }
    out.push('\n');
    out
}

/// What one event prints (nothing for a failed setup or teardown: isolationtester says that on
/// stderr).
pub fn render_event(event: &Event) -> String {
    match event {
        Event::Rows { table, .. } => render_table(table),
        Event::PartFailed { .. } => String::new(),
        Event::Notice { session, notice } => format!("{session}: {}:  {}\n", notice.severity, notice.message),
        Event::Waiting { step, sql, .. } => format!("step {step}: {sql} <waiting ...>\n"),
        Event::Done { step, sql, waited, answer, .. } => {
            let mut out =
                if *waited { format!("step {step}: <... completed>\n") } else { format!("step {step}: {sql}\n") };
            out.push_str(&render_answer(answer));
            out
        }
        Event::Canceled { step, seconds } => {
            format!("isolationtester: canceling step {step} after {seconds} seconds\n")
        }
    }
}

fn render_answer(answer: &Answer) -> String {
    let mut out: String = answer.tables.iter().map(render_table).collect();
    if let Some(error) = &answer.error {
        let _ = writeln!(out, "{}:  {}", error.severity, error.message);
    }
    out
}

/// `PQprint`'s rule: a value is a number when made of digits, `.`, `e`, `E`, ` ` and `-` only, not
/// starting with `e`/`E` and ending with a digit. Empty values and NULLs decide nothing.
fn looks_numeric(value: &str) -> bool {
    let numeric_chars = value.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | ' ' | '-'));
    numeric_chars && !value.starts_with(['e', 'E']) && value.ends_with(|c: char| c.is_ascii_digit())
}

/// One result set as `PQprint` prints it (nothing for a result with no columns).
pub fn render_table(table: &Table) -> String {
    if table.columns.is_empty() {
        return String::new();
    }
    let mut width: Vec<usize> = table.columns.iter().map(String::len).collect();
    let mut numeric = vec![true; table.columns.len()];
    for row in &table.rows {
        for (j, value) in row.iter().enumerate().take(width.len()) {
            let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else { continue };
            width[j] = width[j].max(value.len());
            numeric[j] &= looks_numeric(value);
        }
    }
    let pad = |text: &str, j: usize| {
        let fill = " ".repeat(width[j].saturating_sub(text.len()));
        if numeric[j] { format!("{fill}{text}") } else { format!("{text}{fill}") }
    };
    let line = |cells: Vec<String>| cells.join("|") + "\n";
    let mut out = line(table.columns.iter().enumerate().map(|(j, name)| pad(name, j)).collect());
    out.push_str(&line(width.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>()).replace('|', "+"));
    for row in &table.rows {
        out.push_str(&line(
            (0..width.len()).map(|j| pad(row.get(j).cloned().flatten().as_deref().unwrap_or(""), j)).collect(),
        ));
    }
    let n = table.rows.len();
    let _ = write!(out, "({n} row{})\n\n", if n == 1 { "" } else { "s" });
    out
}

#[cfg(test)]
mod tests {
    use super::{looks_numeric, render_table};
    use crate::spec::report::Table;

    fn table(columns: &[&str], rows: &[&[Option<&str>]]) -> Table {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows.iter().map(|r| r.iter().map(|v| v.map(str::to_owned)).collect()).collect(),
        }
    }

    #[test]
    fn numbers_are_right_aligned_text_left_and_the_header_follows_its_column() {
        let t = table(
            &["id", "v", "name"],
            &[&[Some("-3"), Some("300000"), Some("longer name")], &[Some("2"), Some("20"), None]],
        );
        assert_eq!(
            render_table(&t),
            "id|     v|name       \n--+------+-----------\n-3|300000|longer name\n 2|    20|           \n(2 rows)\n\n"
        );
    }

    #[test]
    fn empty_results_keep_their_header_and_say_zero_rows() {
        assert_eq!(render_table(&table(&["id"], &[])), "id\n--\n(0 rows)\n\n");
        assert_eq!(render_table(&table(&[], &[])), "");
    }

    #[test]
    fn libpq_number_rule() {
        for yes in ["1", "-1", "1.5", "1e10", "1 2"] {
            assert!(looks_numeric(yes), "{yes}");
        }
        for no in ["t", "e1", "1.", "1-", "x1", "NaN", "1,2"] {
            assert!(!looks_numeric(no), "{no}");
        }
    }
}
