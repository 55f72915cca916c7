//! `--format text`: each permutation drawn as the lab draws an interleaving, one column per session
//! (time goes down), waits and errors marked, and a line saying what each session's transactions
//! came to. Fits `width` columns (80 on a terminal): long SQL is cut with `…`.

use std::fmt::Write;

use super::report::{Answer, Event, Part, PermutationRun, SpecRun, Table};

/// The whole run, permutation by permutation.
pub fn render(run: &SpecRun, width: usize) -> String {
    let total = run.permutations.len();
    let mut out = String::new();
    for (i, permutation) in run.permutations.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&render_permutation(&run.sessions, permutation, i + 1, total, width));
    }
    out
}

/// One cell of the drawing: a line in one session's column, or across all of them.
enum Line {
    In(usize, String),
    Across(String),
}

fn render_permutation(sessions: &[String], run: &PermutationRun, n: usize, total: usize, width: usize) -> String {
    let mut out = wrap(&format!("permutation {n}/{total}: {}", run.steps.join(" ")), width);
    let columns = sessions.len().max(1);
    // "| " between columns; each column at least 12 wide.
    let column = (width.saturating_sub(3 * (columns - 1)) / columns).max(12);
    let index = |name: &str| sessions.iter().position(|s| s == name).unwrap_or(0);
    let mut lines = Vec::new();
    for event in &run.events {
        match event {
            Event::Rows { part, table } => lines.push(Line::Across(format!("{}: {}", part_name(part), summary(table)))),
            Event::PartFailed { part, error } => {
                lines.push(Line::Across(format!("{} failed: {}: {}", part_name(part), error.severity, error.message)))
            }
            Event::Notice { session, notice } => {
                lines.push(Line::In(index(session), format!("{}: {}", notice.severity, notice.message)))
            }
            Event::Waiting { step, session, sql } => {
                lines.push(Line::In(index(session), format!("{step}: {}", one_line(sql))));
                lines.push(Line::In(index(session), "  ... waits".to_owned()));
            }
            Event::Done { step, session, sql, waited, answer } => {
                let s = index(session);
                if *waited {
                    lines.push(Line::In(s, format!("{step}: ... completed")));
                } else {
                    lines.push(Line::In(s, format!("{step}: {}", one_line(sql))));
                }
                answer_lines(answer, &mut |text| lines.push(Line::In(s, format!("  {text}"))));
            }
            Event::Canceled { step, seconds } => {
                lines.push(Line::Across(format!("{step} canceled after {seconds} s (--step-timeout)")))
            }
        }
    }
    let header: Vec<String> = sessions.iter().map(|s| fit(s, column)).collect();
    let _ = writeln!(out, "{}", header.join(" | ").trim_end());
    let _ = writeln!(out, "{}", vec!["-".repeat(column); columns].join("-+-"));
    for line in lines {
        let text = match line {
            Line::In(s, text) => {
                // Only up to the session's own column: nothing trails it.
                let cells: Vec<String> =
                    (0..=s).map(|c| if c == s { fit(&text, column) } else { " ".repeat(column) }).collect();
                cells.join(" | ")
            }
            Line::Across(text) => fit(&text, width),
        };
        let _ = writeln!(out, "{}", text.trim_end());
    }
    let _ = writeln!(out, "{}", fit(&outcome(sessions, run), width).trim_end());
    out
}

fn part_name(part: &Part) -> String {
    match part {
        Part::Setup => "setup".to_owned(),
        Part::SessionSetup(s) => format!("setup of {s}"),
        Part::SessionTeardown(s) => format!("teardown of {s}"),
        Part::Teardown => "teardown".to_owned(),
    }
}

/// A step's answer, a few short lines: the rows (up to 3 per table), or the error and its kind.
fn answer_lines(answer: &Answer, push: &mut dyn FnMut(String)) {
    for table in &answer.tables {
        push(format!("-> {}", summary(table)));
        if table.rows.len() > 1 || table.columns.len() > 1 {
            for row in table.rows.iter().take(3) {
                push(format!("   {}", row.iter().map(value).collect::<Vec<_>>().join("|")));
            }
            if table.rows.len() > 3 {
                push(format!("   ... {} more", table.rows.len() - 3));
            }
        }
    }
    if let Some(error) = &answer.error {
        push(format!("!! {}: {} [{}]", error.severity, error.message, error.kind));
    }
}

fn value(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "NULL".to_owned())
}

/// `v = 11` for one value, else `N rows (a, b)`.
fn summary(table: &Table) -> String {
    match (table.columns.as_slice(), table.rows.as_slice()) {
        ([column], [row]) => format!("{column} = {}", row.first().map(value).unwrap_or_default()),
        (columns, rows) => {
            format!("{} row{} ({})", rows.len(), if rows.len() == 1 { "" } else { "s" }, columns.join(", "))
        }
    }
}

/// The SQL on one line: white space runs folded into one space.
fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` broken at spaces into lines of at most `width` characters (a longer word stays whole), the
/// lines after the first indented by two spaces; each line ends with a newline.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = "  ".to_owned();
        }
        if !line.is_empty() && line != "  " {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// `text` cut or padded to exactly `width` characters.
pub(crate) fn fit(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return format!("{text}{}", " ".repeat(width - count));
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// What each session's transactions came to: committed (a COMMIT that answered without error after
/// no failed step), rolled back (ROLLBACK, or COMMIT of a transaction a failed step aborted), failed
/// steps with their error kind.
pub(crate) fn outcome(sessions: &[String], run: &PermutationRun) -> String {
    let mut committed = Vec::new();
    let mut rolled_back = Vec::new();
    let mut failed = Vec::new();
    let mut aborted = vec![false; sessions.len()];
    for event in &run.events {
        let Event::Done { step, session, sql, answer, .. } = event else { continue };
        let s = sessions.iter().position(|x| x == session).unwrap_or(0);
        let verb = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("").to_ascii_uppercase();
        if let Some(error) = &answer.error {
            failed.push(format!("{step} ({})", error.kind));
            aborted[s] = true;
            continue;
        }
        let last = sql.to_ascii_uppercase();
        let ends_commit = last.trim_end().trim_end_matches(';').trim_end().ends_with("COMMIT");
        if verb == "COMMIT" || verb == "END" || ends_commit {
            if aborted[s] {
                rolled_back.push(session.clone())
            } else {
                committed.push(session.clone())
            }
            aborted[s] = false;
        } else if verb == "ROLLBACK" || verb == "ABORT" {
            rolled_back.push(session.clone());
            aborted[s] = false;
        }
    }
    let list = |v: Vec<String>| if v.is_empty() { "none".to_owned() } else { v.join(", ") };
    format!("=> committed: {}; rolled back: {}; failed: {}", list(committed), list(rolled_back), list(failed))
}

#[cfg(test)]
mod tests {
    use super::{fit, render};
    use crate::ErrorKind;
    use crate::spec::report::{Answer, Event, PermutationRun, SpecRun, StepError, Table};

    fn done(step: &str, session: &str, sql: &str, waited: bool, answer: Answer) -> Event {
        Event::Done { step: step.into(), session: session.into(), sql: sql.into(), waited, answer }
    }

    #[test]
    fn sessions_are_columns_waits_and_errors_are_marked_and_the_outcome_is_said() {
        let one = |v: &str| Answer {
            tables: vec![Table { columns: vec!["v".into()], rows: vec![vec![Some(v.into())]] }],
            error: None,
        };
        let failure = Answer {
            tables: vec![],
            error: Some(StepError {
                severity: "ERROR".into(),
                message: "could not serialize access due to concurrent update".into(),
                code: Some("40001".into()),
                kind: ErrorKind::SerializationFailure,
            }),
        };
        let run = SpecRun {
            sessions: vec!["s1".into(), "s2".into()],
            permutations: vec![PermutationRun {
                steps: vec!["r1".into(), "w2".into(), "c1".into(), "c2".into()],
                events: vec![
                    done("r1", "s1", "UPDATE t SET v = 11 RETURNING v;", false, one("11")),
                    Event::Waiting { step: "w2".into(), session: "s2".into(), sql: "UPDATE t\n  SET v = 12;".into() },
                    done("c1", "s1", "COMMIT;", false, Answer::default()),
                    done("w2", "s2", "UPDATE t SET v = 12;", true, failure),
                    done("c2", "s2", "COMMIT;", false, Answer::default()),
                ],
            }],
        };
        let text = render(&run, 80);
        let expected = "\
permutation 1/1: r1 w2 c1 c2
s1                                     | s2
---------------------------------------+---------------------------------------
r1: UPDATE t SET v = 11 RETURNING v;
  -> v = 11
                                       | w2: UPDATE t SET v = 12;
                                       |   ... waits
c1: COMMIT;
                                       | w2: ... completed
                                       |   !! ERROR: could not serialize acces…
                                       | c2: COMMIT;
=> committed: s1; rolled back: s2; failed: w2 (serialization_failure)
";
        assert_eq!(text, expected);
        assert!(text.lines().all(|l| l.chars().count() <= 80));
    }

    #[test]
    fn long_lines_wrap_at_spaces() {
        assert_eq!(super::wrap("permutation 1/1: a bb ccc", 12), "permutation\n  1/1: a bb\n  ccc\n");
        assert_eq!(super::wrap("short", 12), "short\n");
    }

    #[test]
    fn long_text_is_cut_to_the_width() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("ab", 4), "ab  ");
    }
}
