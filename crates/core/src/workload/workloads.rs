//! [`Workload`]: the names `--workload` takes, and for each its invariant and its strategies, so the
//! command line, the service and the docs list the same ones. Nothing here runs anything.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::booking::Booking;
use super::counter::CounterWorkload;
use super::oncall::OnCall;
use super::queue::Queue;
use super::scenario::{Scenario, WorkloadStrategy};
use super::stock::Stock;
use super::transfer::Transfer;
use crate::strategy::Strategy;

/// Where a strategy is meant to keep its invariant.
#[derive(Debug, Clone, Copy)]
struct Safety {
    one_node: bool,
    across_nodes: bool,
}

fn safety<S: WorkloadStrategy>(name: &str) -> Option<Safety> {
    S::parse(name).map(|s| Safety { one_node: s.safe(), across_nodes: s.safe_across_nodes() })
}

/// A kind of race, with its operation and its invariant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Increments of one counter row: the [`Experiment`](crate::Experiment), or the same strategies
    /// through the generic runner ([`CounterWorkload`](super::CounterWorkload)).
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
            Workload::Counter => CounterWorkload::INVARIANT,
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
            Workload::Counter => CounterWorkload::SENTENCE,
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
        self.safety(strategy).map(|s| s.one_node)
    }

    /// Whether the named strategy keeps the invariant when its workers write through different nodes
    /// of a Galera cluster ([`WorkloadStrategy::safe_across_nodes`]).
    pub fn is_safe_across_nodes(self, strategy: &str) -> Option<bool> {
        self.safety(strategy).map(|s| s.across_nodes)
    }

    fn safety(self, strategy: &str) -> Option<Safety> {
        match self {
            // The counter's unsafe strategies are those that never retry: naive, versioned-no-retry.
            // Each increment writes the counter's row, which certification compares across nodes (the
            // default `safe_across_nodes`).
            Workload::Counter => safety::<Strategy>(strategy),
            Workload::Stock => safety::<<Stock as Scenario>::Strategy>(strategy),
            Workload::Transfer => safety::<<Transfer as Scenario>::Strategy>(strategy),
            Workload::OnCall => safety::<<OnCall as Scenario>::Strategy>(strategy),
            Workload::Queue => safety::<<Queue as Scenario>::Strategy>(strategy),
            Workload::Booking => safety::<<Booking as Scenario>::Strategy>(strategy),
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
        // Locks of rows not written hold on one node only; a row both write is certified across nodes.
        assert_eq!(Workload::OnCall.is_safe_across_nodes("pessimistic"), Some(false));
        assert_eq!(Workload::OnCall.is_safe_across_nodes("materialized"), Some(true));
        assert_eq!(Workload::Booking.is_safe_across_nodes("serializable"), Some(false));
        assert_eq!(Workload::Booking.is_safe_across_nodes("unique"), Some(true));
        assert_eq!(Workload::Stock.is_safe_across_nodes("pessimistic"), Some(true));
    }
}
