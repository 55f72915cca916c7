//! What a spec file says, once parsed and checked: setups, sessions with their steps, permutations
//! with their blocker annotations. Step references are indices, resolved once by the parser, so the
//! runner never looks a name up.

use serde::Serialize;

/// A whole spec file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spec {
    /// The `setup` blocks, run in order on the control connection before every permutation.
    pub setups: Vec<String>,
    /// The `teardown` block, run on the control connection after every permutation.
    pub teardown: Option<String>,
    pub sessions: Vec<Session>,
    /// The `permutation` lines; empty means every interleaving ([`Spec::permutations`]).
    pub permutations: Vec<Permutation>,
    /// What isolationtester warns about on stderr without stopping (a step no permutation uses).
    pub warnings: Vec<String>,
}

/// One `session`: a connection of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub name: String,
    pub setup: Option<String>,
    pub steps: Vec<Step>,
    pub teardown: Option<String>,
}

/// One `step NAME { SQL }` of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub name: String,
    pub sql: String,
}

/// Where a step is: its session and its place in that session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct StepRef {
    pub session: usize,
    pub index: usize,
}

/// One permutation: the order in which steps are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permutation {
    pub steps: Vec<PermutationStep>,
}

/// A step of a permutation, with the conditions that hold back its report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermutationStep {
    pub name: String,
    pub step: StepRef,
    pub blockers: Vec<Blocker>,
}

/// A blocker annotation: `step(*)`, `step(other)` or `step(other notices N)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Blocker {
    /// `(*)`: reported as waiting when sent, whatever the database does.
    Once,
    /// `(other)`: not reported complete while step `other` is still running.
    Step { name: String, step: StepRef },
    /// `(other notices N)`: not reported complete until `other`'s session has sent N more notices.
    Notices { name: String, step: StepRef, count: u32 },
}

impl Spec {
    /// The step at `at`.
    pub fn step(&self, at: StepRef) -> &Step {
        &self.sessions[at.session].steps[at.index]
    }

    /// The permutations to run: the spec's own, or every interleaving that keeps each session's
    /// order, in isolationtester's order.
    pub fn permutations(&self) -> Vec<Permutation> {
        if self.permutations.is_empty() { super::permute::all(self) } else { self.permutations.clone() }
    }

    /// The step named `name`, if any.
    pub fn find_step(&self, name: &str) -> Option<StepRef> {
        self.sessions.iter().enumerate().find_map(|(session, s)| {
            s.steps.iter().position(|step| step.name == name).map(|index| StepRef { session, index })
        })
    }
}

impl Permutation {
    /// The step names, space-separated, as isolationtester's `starting permutation:` line lists them.
    pub fn names(&self) -> String {
        self.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" ")
    }
}
