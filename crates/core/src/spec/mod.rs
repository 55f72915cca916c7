//! PostgreSQL's isolation-tester spec files, run by racelab: your own interleavings of two or three
//! sessions, in the format PostgreSQL's own isolation tests use (`src/test/isolation/README`).
//!
//! Read it in this order: [`parse`](mod@parse) (the format, and its errors with line and column), [`model`]
//! (what a spec says), `permute` (every interleaving, when a spec names none), `level` (each
//! backend's isolation levels), [`translate`] (PostgreSQL's `BEGIN ISOLATION LEVEL` in another
//! backend's words, or at a given [`Level`]), [`run`](mod@run) (running it with
//! isolationtester's semantics, blocking told by the database) over `backend` (what the runner needs
//! of a database: `pg`, `mysql`, `sqlite`), [`report`] (what a run produced, as events), and the
//! outputs: [`isolationtester`] (byte for byte what PostgreSQL's isolationtester prints), [`text`].

mod backend;
pub mod diff;
mod exec;
pub mod isolationtester;
mod level;
pub mod model;
mod mysql;
mod notice;
pub mod parse;
mod permute;
mod pg;
pub mod report;
pub mod run;
mod scan;
mod session;
mod split;
mod sqlite;
pub mod text;
pub mod translate;

pub use self::level::Level;
pub use self::model::{Blocker, Permutation, PermutationStep, Session, Spec, Step, StepRef};
pub use self::notice::Notice;
pub use self::parse::{ParseError, Position, SpecFileError, parse, parse_file, parse_permutation};
pub use self::permute::count as count_permutations;
pub use self::report::{Answer, Event, Part, PermutationRun, SpecRun, StepError, Table};
pub use self::run::{
    DEFAULT_STEP_TIMEOUT, INTERRUPTED, Outcome, RunError, RunOptions, Semantics, Stopped, run, run_on_nodes, run_until,
    run_with,
};

#[cfg(test)]
mod tests;
