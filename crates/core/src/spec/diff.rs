//! The same spec run on several databases, compared: the permutations whose outcome differs, each
//! step's answer (rows), error kind and whether it waited, side by side. What a step printed
//! otherwise (the SQL as translated, an error's wording, column names' case) is each backend's own
//! and not a difference.

use std::fmt::Write;

use serde::Serialize;

use super::report::{Event, PermutationRun, SpecRun};
use super::text::{fit, outcome, wrap};
use crate::ErrorKind;

/// What one step of a permutation came to on one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepOutcome {
    pub step: String,
    /// Reported waiting before it completed.
    pub waited: bool,
    /// Each table's rows, values as text.
    pub rows: Vec<Vec<Vec<Option<String>>>>,
    pub error: Option<ErrorKind>,
}

/// A permutation whose outcome differs between the databases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Its place in the run, from 0.
    pub index: usize,
    pub steps: Vec<String>,
    /// Per database (in the order given), per step of the permutation: its outcome, `None` when the
    /// run stopped before the step completed.
    pub outcomes: Vec<Vec<Option<StepOutcome>>>,
    /// Per database: what committed, as the text format says it.
    pub committed: Vec<String>,
}

/// Each step of `permutation` in the permutation's order (the k-th completion of a step name is its
/// k-th place in the permutation: a session runs its steps one after the other).
pub fn outcomes(permutation: &PermutationRun) -> Vec<Option<StepOutcome>> {
    let mut slots: Vec<Option<StepOutcome>> = vec![None; permutation.steps.len()];
    for event in &permutation.events {
        let Event::Done { step, answer, waited, .. } = event else { continue };
        let Some(slot) = (0..slots.len()).find(|&i| permutation.steps[i] == *step && slots[i].is_none()) else {
            continue;
        };
        slots[slot] = Some(StepOutcome {
            step: step.clone(),
            waited: *waited,
            rows: answer.tables.iter().map(|t| t.rows.clone()).collect(),
            error: answer.error.as_ref().map(|e| e.kind),
        });
    }
    slots
}

/// The permutations of `runs` (one spec run on each database) whose outcomes differ.
pub fn differences(runs: &[&SpecRun]) -> Vec<Difference> {
    let count = runs.iter().map(|r| r.permutations.len()).max().unwrap_or(0);
    let mut out = Vec::new();
    for index in 0..count {
        let each: Vec<Option<&PermutationRun>> = runs.iter().map(|r| r.permutations.get(index)).collect();
        let outcomes: Vec<Vec<Option<StepOutcome>>> =
            each.iter().map(|p| p.map(outcomes).unwrap_or_default()).collect();
        if outcomes.iter().all(|o| *o == outcomes[0]) {
            continue;
        }
        let steps = each.iter().flatten().next().map(|p| p.steps.clone()).unwrap_or_default();
        let committed = runs
            .iter()
            .zip(&each)
            .map(|(run, p)| p.map_or_else(|| "=> not run".to_owned(), |p| outcome(&run.sessions, p)))
            .collect();
        out.push(Difference { index, steps, outcomes, committed });
    }
    out
}

/// The differences as text within `width` columns: per permutation, the steps whose outcome differs,
/// one column per database (`names`), and what committed on each.
pub fn render(names: &[String], total: usize, differences: &[Difference], width: usize) -> String {
    let mut out = String::new();
    let step_width = 12;
    let columns = names.len().max(1);
    let column = (width.saturating_sub(step_width + 3 * columns) / columns).max(12);
    for difference in differences {
        out.push('\n');
        out.push_str(&wrap(
            &format!("permutation {}/{total}: {}", difference.index + 1, difference.steps.join(" ")),
            width,
        ));
        let mut header = vec![fit("step", step_width)];
        header.extend(names.iter().map(|n| fit(n, column)));
        let _ = writeln!(out, "{}", header.join(" | ").trim_end());
        let mut rule = vec!["-".repeat(step_width)];
        rule.extend(names.iter().map(|_| "-".repeat(column)));
        let _ = writeln!(out, "{}", rule.join("-+-"));
        for (i, step) in difference.steps.iter().enumerate() {
            let cells: Vec<Option<&StepOutcome>> =
                difference.outcomes.iter().map(|o| o.get(i).and_then(Option::as_ref)).collect();
            if cells.iter().all(|c| *c == cells[0]) {
                continue;
            }
            let mut line = vec![fit(step, step_width)];
            line.extend(cells.iter().map(|c| fit(&summary(*c), column)));
            let _ = writeln!(out, "{}", line.join(" | ").trim_end());
        }
        for (name, committed) in names.iter().zip(&difference.committed) {
            out.push_str(&wrap(&format!("{name} {committed}"), width));
        }
    }
    out
}

/// One step's outcome in a few words: `waited, ` then the error kind, or the rows.
fn summary(outcome: Option<&StepOutcome>) -> String {
    let Some(outcome) = outcome else { return "(not completed)".to_owned() };
    let mut text = if outcome.waited { "waited, ".to_owned() } else { String::new() };
    match (&outcome.error, outcome.rows.as_slice()) {
        (Some(kind), _) => text.push_str(&format!("ERROR {kind}")),
        (None, []) => text.push_str("ok"),
        (None, tables) => {
            let rows: Vec<String> = tables
                .iter()
                .flatten()
                .map(|row| row.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect::<Vec<_>>().join("|"))
                .collect();
            text.push_str(&if rows.is_empty() { "0 rows".to_owned() } else { rows.join(", ") });
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{differences, render};
    use crate::ErrorKind;
    use crate::spec::report::{Answer, Event, PermutationRun, SpecRun, StepError, Table};

    fn done(step: &str, session: &str, sql: &str, answer: Answer) -> Event {
        Event::Done { step: step.into(), session: session.into(), sql: sql.into(), waited: false, answer }
    }

    fn run(write_error: Option<ErrorKind>, message: &str) -> SpecRun {
        let value = Answer {
            tables: vec![Table { columns: vec!["v".into()], rows: vec![vec![Some("10".into())]] }],
            error: None,
        };
        let write = Answer {
            tables: vec![],
            error: write_error.map(|kind| StepError {
                severity: "ERROR".into(),
                message: message.into(),
                code: None,
                kind,
            }),
        };
        let steps = ["r1", "w2", "c1", "c2"].map(String::from).to_vec();
        SpecRun {
            sessions: vec!["s1".into(), "s2".into()],
            permutations: vec![
                PermutationRun {
                    steps: steps.clone(),
                    events: vec![
                        done("r1", "s1", "SELECT v", value.clone()),
                        done("c1", "s1", "COMMIT;", Answer::default()),
                    ],
                },
                PermutationRun {
                    steps,
                    events: vec![
                        done("r1", "s1", "SELECT v", value),
                        Event::Waiting { step: "w2".into(), session: "s2".into(), sql: "UPDATE".into() },
                        done("c1", "s1", "COMMIT;", Answer::default()),
                        Event::Done {
                            step: "w2".into(),
                            session: "s2".into(),
                            sql: "UPDATE".into(),
                            waited: true,
                            answer: write,
                        },
                        done("c2", "s2", "COMMIT;", Answer::default()),
                    ],
                },
            ],
        }
    }

    #[test]
    fn only_a_permutation_whose_outcome_differs_is_reported_and_only_its_differing_steps_drawn() {
        let pg = run(Some(ErrorKind::SerializationFailure), "could not serialize access");
        let maria = run(None, "");
        let found = differences(&[&pg, &maria]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].index, 1);
        let text = render(&["postgres".into(), "mysql".into()], 2, &found, 80);
        let expected = "
permutation 2/2: r1 w2 c1 c2
step         | postgres                        | mysql
-------------+---------------------------------+--------------------------------
w2           | waited, ERROR serialization_fa… | waited, ok
postgres => committed: s1; rolled back: s2; failed: w2 (serialization_failure)
mysql => committed: s1, s2; rolled back: none; failed: none
";
        assert_eq!(text, expected);
    }

    #[test]
    fn the_same_outcome_in_other_words_is_no_difference() {
        let one = run(Some(ErrorKind::Deadlock), "deadlock detected");
        let other = run(Some(ErrorKind::Deadlock), "Deadlock found when trying to get lock");
        assert!(differences(&[&one, &other]).is_empty());
    }
}
