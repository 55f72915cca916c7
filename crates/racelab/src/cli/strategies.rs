//! The `--strategy` list of `lab` and `bench`: names to strategies for one backend, and a note for
//! each strategy `all` left out there.
//!
//! Never drops a strategy without a word: one the backend cannot run is refused by name, or, under
//! `all`, named in a note.

use racelab_core::strategy::UnknownStrategy;
use racelab_core::{Backend, Strategy};

use super::failure::Failure;

/// Parses a comma-separated strategy list (`all` = every strategy the backend supports).
pub fn parse_strategies(list: &str, backend: Backend) -> Result<Vec<Strategy>, Failure> {
    let mut strategies = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name.eq_ignore_ascii_case("all") {
            strategies.extend(Strategy::all_for(backend));
            continue;
        }
        let strategy: Strategy = name.parse().map_err(|e: UnknownStrategy| Failure::usage_from(e))?;
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

/// What `all` left out on this backend, and why: a strategy's row is never dropped without a word.
pub fn not_run_notes(list: &str, backend: Backend) -> Vec<String> {
    if !list.split(',').any(|name| name.trim().eq_ignore_ascii_case("all")) {
        return Vec::new();
    }
    Strategy::names()
        .iter()
        .filter_map(|name| name.parse::<Strategy>().ok())
        .filter(|strategy| !strategy.supported_on(backend))
        .map(|strategy| format!("the {strategy} strategy was not run: it {}", why_not_supported(strategy, backend)))
        .collect()
}
