//! The `--strategy` list of `lab` and `bench`: names to strategies for one backend, and a note for
//! each strategy `all` left out there.
//!
//! Never drops a strategy without a word: one the backend cannot run is refused by name, or, under
//! `all`, named in a note (and in `lab --json`'s `not_run`). A name it does not know is answered with
//! the list, `all` included, and the nearest name it knows.

use racelab_core::{Backend, Strategy};
use serde::Serialize;

use super::failure::Failure;

/// Parses a comma-separated strategy list (`all` = every strategy the backend supports).
pub fn parse_strategies(list: &str, backend: Backend) -> Result<Vec<Strategy>, Failure> {
    let mut strategies = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name.eq_ignore_ascii_case("all") {
            strategies.extend(Strategy::all_for(backend));
            continue;
        }
        let strategy: Strategy = name.parse().map_err(|err| Failure::usage(unknown(name)).because(err))?;
        if !strategy.supported_on(backend) {
            return Err(Failure::usage(format!("the {strategy} strategy {}", why_not_supported(strategy, backend))));
        }
        strategies.push(strategy);
    }
    if strategies.is_empty() {
        return Err(Failure::usage("no strategy given; use --strategy all or a comma-separated list"));
    }
    let mut seen = std::collections::HashSet::new();
    strategies.retain(|s| seen.insert(*s));
    Ok(strategies)
}

/// Why a strategy cannot run on a backend, to follow "the X strategy".
fn why_not_supported(strategy: Strategy, backend: Backend) -> String {
    match strategy {
        Strategy::Advisory => format!(
            "is not supported on {backend}, which has no application locks (PostgreSQL has \
             pg_advisory_xact_lock, MariaDB/MySQL GET_LOCK)"
        ),
        _ => format!("is not supported on {backend}"),
    }
}

/// A strategy `all` left out on a backend, and why (`lab --json`'s `not_run`).
#[derive(Debug, Clone, Serialize)]
pub struct NotRun {
    pub strategy: Strategy,
    /// "it is not supported on sqlite, which has no application locks (...)".
    pub reason: String,
}

/// What `all` left out on this backend, and why: a strategy's row is never dropped without a word.
pub fn not_run(list: &str, backend: Backend) -> Vec<NotRun> {
    if !list.split(',').any(|name| name.trim().eq_ignore_ascii_case("all")) {
        return Vec::new();
    }
    Strategy::names()
        .iter()
        .filter_map(|name| name.parse::<Strategy>().ok())
        .filter(|strategy| !strategy.supported_on(backend))
        .map(|strategy| NotRun { strategy, reason: format!("it {}", why_not_supported(strategy, backend)) })
        .collect()
}

impl NotRun {
    /// "the advisory strategy was not run: it is not supported on sqlite, ...".
    pub fn sentence(&self) -> String {
        format!("the {} strategy was not run: {}", self.strategy, self.reason)
    }
}

/// [`not_run`] as sentences, one note each.
pub fn not_run_notes(list: &str, backend: Backend) -> Vec<String> {
    not_run(list, backend).iter().map(NotRun::sentence).collect()
}

/// "unknown strategy `optimistc`; expected one of: naive, ..., or all; did you mean `optimistic`?".
fn unknown(name: &str) -> String {
    let names = Strategy::names();
    let wanted = name.to_ascii_lowercase();
    let nearest = std::iter::once("all")
        .chain(names.iter().copied())
        .map(|candidate| (edit_distance(&wanted, candidate), candidate))
        .min()
        // A third of the name wrong, or more, is no typo of it.
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
        .map(|(_, candidate)| format!("; did you mean `{candidate}`?"));
    format!("unknown strategy `{name}`; expected one of: {}, or all{}", names.join(", "), nearest.unwrap_or_default())
}

/// Levenshtein distance: the fewest single-character insertions, deletions and substitutions that
/// turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_name_gets_the_nearest_one_and_the_list() {
        assert_eq!(edit_distance("optimistc", "optimistic"), 1);
        assert_eq!(edit_distance("", "all"), 3);
        let message = unknown("optimistc");
        assert!(message.starts_with("unknown strategy `optimistc`; expected one of: naive, atomic,"), "{message}");
        assert!(message.ends_with(", sharded, or all; did you mean `optimistic`?"), "{message}");
        assert!(unknown("al").contains("did you mean `all`?"));
        assert!(unknown("pessimistic-skiplocked").contains("did you mean `pessimistic-skip-locked`?"));
        assert!(!unknown("zebra").contains("did you mean"), "{}", unknown("zebra"));
    }
}
