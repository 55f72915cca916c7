//! [`Workload`]: the names `--workload` takes, and for each its invariant and its strategies, so the
//! command line, the service and the docs list the same ones. Nothing here runs anything.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::booking::Booking;
use super::oncall::OnCall;
use super::queue::Queue;
use super::scenario::{Scenario, WorkloadStrategy};
use super::stock::Stock;
use super::transfer::Transfer;
use crate::strategy::Strategy;

/// A kind of race, with its operation and its invariant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Increments of one counter row: the [`Experiment`](crate::Experiment), as it always was.
    Counter,
    /// Buy one of an item whose stock is below the demand.
    Stock,
    /// Move a random amount between two accounts.
    Transfer,
    /// A doctor goes off call if another stays on call (write skew).
    #[serde(rename = "oncall")]
    OnCall,
    /// Book a (room, slot) if it is free.
    Booking,
    /// Claim the oldest pending job and run it.
    Queue,
}

impl Workload {
    /// Every workload, in the order `--workload all` runs them.
    pub const ALL: [Workload; 6] =
        [Workload::Counter, Workload::Stock, Workload::Transfer, Workload::OnCall, Workload::Booking, Workload::Queue];

    /// The name `--workload` takes and output shows.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Counter => "counter",
            Workload::Stock => "stock",
            Workload::Transfer => "transfer",
            Workload::OnCall => "oncall",
            Workload::Queue => "queue",
            Workload::Booking => "booking",
        }
    }

    /// The invariant's name (`invariant.name` in the JSON).
    pub fn invariant(self) -> &'static str {
        match self {
            Workload::Counter => "no-lost-update",
            Workload::Stock => Stock::INVARIANT,
            Workload::Transfer => Transfer::INVARIANT,
            Workload::OnCall => OnCall::INVARIANT,
            Workload::Queue => Queue::INVARIANT,
            Workload::Booking => Booking::INVARIANT,
        }
    }

    /// The invariant in one sentence.
    pub fn invariant_sentence(self) -> &'static str {
        match self {
            Workload::Counter => "every acknowledged increment is in the counter (acknowledged == actual)",
            Workload::Stock => Stock::SENTENCE,
            Workload::Transfer => Transfer::SENTENCE,
            Workload::OnCall => OnCall::SENTENCE,
            Workload::Queue => Queue::SENTENCE,
            Workload::Booking => Booking::SENTENCE,
        }
    }

    /// Every strategy name the workload takes, in the order `all` runs them.
    pub fn strategies(self) -> Vec<&'static str> {
        match self {
            Workload::Counter => Strategy::names().to_vec(),
            Workload::Stock => names::<<Stock as Scenario>::Strategy>(),
            Workload::Transfer => names::<<Transfer as Scenario>::Strategy>(),
            Workload::OnCall => names::<<OnCall as Scenario>::Strategy>(),
            Workload::Queue => names::<<Queue as Scenario>::Strategy>(),
            Workload::Booking => names::<<Booking as Scenario>::Strategy>(),
        }
    }

    /// Whether the named strategy is meant to keep the invariant (`None`: no such strategy). A safe
    /// strategy whose invariant breaks fails the run.
    pub fn is_safe(self, strategy: &str) -> Option<bool> {
        match self {
            // The counter's unsafe strategies are those that never retry: naive, versioned-no-retry.
            Workload::Counter => strategy.parse::<Strategy>().ok().map(Strategy::retries),
            Workload::Stock => <Stock as Scenario>::Strategy::parse(strategy).map(WorkloadStrategy::safe),
            Workload::Transfer => <Transfer as Scenario>::Strategy::parse(strategy).map(WorkloadStrategy::safe),
            Workload::OnCall => <OnCall as Scenario>::Strategy::parse(strategy).map(WorkloadStrategy::safe),
            Workload::Queue => <Queue as Scenario>::Strategy::parse(strategy).map(WorkloadStrategy::safe),
            Workload::Booking => <Booking as Scenario>::Strategy::parse(strategy).map(WorkloadStrategy::safe),
        }
    }
}

fn names<S: WorkloadStrategy>() -> Vec<&'static str> {
    S::ALL.iter().map(|s| s.name()).collect()
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A workload name that is none of [`Workload::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workload `{0}`; expected one of: counter, stock, transfer, oncall, booking, queue")]
pub struct UnknownWorkload(pub String);

impl FromStr for Workload {
    type Err = UnknownWorkload;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Workload::ALL.into_iter().find(|w| w.name() == wanted).ok_or_else(|| UnknownWorkload(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_each_lists_its_strategies() {
        for workload in Workload::ALL {
            assert_eq!(workload.name().parse::<Workload>().unwrap(), workload);
            assert!(!workload.strategies().is_empty());
        }
        assert!("ledger".parse::<Workload>().unwrap_err().to_string().contains("counter, stock"));
        assert_eq!(Workload::Stock.is_safe("naive"), Some(false));
        assert_eq!(Workload::Stock.is_safe("conditional"), Some(true));
        assert_eq!(Workload::Stock.is_safe("atomic"), None);
        assert_eq!(Workload::Counter.is_safe("naive"), Some(false));
        assert_eq!(Workload::Counter.is_safe("atomic"), Some(true));
    }
}
