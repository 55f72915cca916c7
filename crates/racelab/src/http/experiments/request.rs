//! What a run was asked to do, normalized: defaults filled in, names canonical, shown back as a run's
//! `request`. It is made from a body by
//! [`ExperimentBody::validate`](crate::http::experiments::ExperimentBody::validate) against the
//! [`Bounds`] of this server.
//!
//! Nothing here may read a request: a value of these types has already been checked.

use std::fmt;

use racelab_core::spec::{Permutation, Spec};
use racelab_core::workload::Sizes;
use racelab_core::{Backend, Isolation, LockMode, Strategy, Workload};
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Each strategy once, `workers` x `increments`, as `racelab lab`.
    Lab,
    /// Each strategy at each worker count, as `racelab bench` (counted increments, not timed).
    Bench,
    /// Hermitage's isolation tests at every level of the database, as `racelab anomalies`.
    Anomalies,
    /// An isolation-tester spec file's permutations, as `racelab spec`.
    Spec,
}

/// Worker counts: one (a lab's usual), or a sweep (a bench's; a lab given a list runs each strategy at
/// each count too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Workers {
    One(usize),
    Sweep(Vec<usize>),
}

impl Workers {
    /// Each count, in order.
    pub fn counts(&self) -> Vec<usize> {
        match self {
            Workers::One(n) => vec![*n],
            Workers::Sweep(counts) => counts.clone(),
        }
    }
}

/// One strategy of a run: the counter's (an engine [`Strategy`], run by the experiment), or one of a
/// workload's, by its name (one of [`Workload::strategies`]; the counter's too at an isolation level).
/// Shown by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    Counter(Strategy),
    Workload(&'static str),
}

impl fmt::Display for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pick::Counter(strategy) => strategy.fmt(f),
            Pick::Workload(name) => f.write_str(name),
        }
    }
}

impl Serialize for Pick {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A lab run's workload, run by the workloads' runner, and its settings: a workload beyond the counter,
/// or the counter at an isolation level (absent for the counter without one, whose run view is as it
/// always was).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadPlan {
    pub workload: Workload,
    /// `null`: the database's default level.
    pub isolation: Option<Isolation>,
    /// `stock`, `accounts`, `doctors`, `jobs`, `rooms` and `slots`, shown beside the others.
    #[serde(flatten)]
    pub sizes: Sizes,
}

/// A lab or bench run's settings, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The counter's strategies, or the workload's names.
    pub strategies: Vec<Pick>,
    pub workers: Workers,
    pub increments: u64,
    pub force_race: bool,
    #[serde(serialize_with = "lock_mode_name")]
    pub lock_mode: LockMode,
    /// `null`: each experiment on a fresh row of its own.
    pub post: Option<i64>,
    /// A workload beyond the counter, or the counter at a level: its name and settings, shown beside
    /// the others.
    #[serde(flatten)]
    pub workload: Option<WorkloadPlan>,
}

fn lock_mode_name<S: serde::Serializer>(mode: &LockMode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(mode.as_str())
}

impl Plan {
    /// The experiments of the run, in order: each strategy at each worker count.
    pub fn cells(&self) -> Vec<(Pick, usize)> {
        let counts = self.workers.counts();
        self.strategies.iter().flat_map(|s| counts.iter().map(move |w| (*s, *w))).collect()
    }
}

/// A spec run's settings: the spec as sent, and what it was parsed into (not shown back: the text is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecPlan {
    /// The spec file's text, as sent.
    pub spec: String,
    /// The one permutation to run, as sent; `null`: the spec's own, else every interleaving.
    pub permutation: Option<String>,
    /// Seconds a step may wait before it is cancelled (twice as long ends the run).
    pub step_timeout: u64,
    #[serde(skip)]
    pub parsed: Spec,
    /// The permutations to run, in order.
    #[serde(skip)]
    pub permutations: Vec<Permutation>,
}

/// A validated request, as the run view shows it (`request`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExperimentRequest {
    pub kind: Kind,
    /// Absent for `anomalies` and `spec`, which take no lab settings.
    #[serde(flatten)]
    pub plan: Option<Plan>,
    /// A `spec` run's spec and settings; absent for the other kinds.
    #[serde(flatten)]
    pub spec: Option<SpecPlan>,
}

/// The most worker counts one bench sweeps.
pub const MAX_SWEEP: usize = 8;

/// What a body is checked against: the server's database and limits.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub backend: Backend,
    pub max_workers: usize,
    pub max_increments: u64,
    /// Slot rows of the `sharded` strategy (`--slots`).
    pub slots: u16,
}
