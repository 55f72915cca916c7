//! Workloads: the races engineers ship, beyond the counter. A workload is its rows for one run, one
//! *operation* (a business transaction: buy one, move an amount) written once per strategy against
//! [`Session`](crate::Session), the **invariant** checked after the run from the database's own state
//! and the acknowledged operations, and its accounting.
//!
//! Every operation ends as exactly one of: acknowledged; **refused** by the business rule (sold out,
//! insufficient funds: an answer, not an error); failed (with its error kind); or in doubt (the answer
//! to its commit was lost). Each invariant is stated so that in-doubt operations bound it, the way
//! `acknowledged <= actual <= acknowledged + in_doubt` does for the counter.
//!
//! The counter ([`Workload::Counter`]) is the [`Experiment`](crate::Experiment) as it always was; the
//! others run through one generic runner here ([`WorkloadExperiment`]), which reuses the experiment's
//! pieces (its fates, statistics, progress, race gate, retry policy and the spreading of workers over
//! nodes).
//!
//! ```
//! use racelab_core::workload::{Sizes, WorkloadExperiment};
//! use racelab_core::{ConnectOptions, Database, DatabaseUrl, Workload};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let path = std::env::temp_dir().join(format!("racelab-workload-doc-{}.db", std::process::id()));
//! let db = Database::connect(ConnectOptions::new(DatabaseUrl::parse(&format!("sqlite://{}", path.display()))?)).await?;
//!
//! // 4 buyers x 3 purchases of a stock of 5, each purchase one guarded UPDATE.
//! let experiment = WorkloadExperiment {
//!     sizes: Sizes { stock: Some(5), ..Sizes::default() },
//!     ..WorkloadExperiment::new(Workload::Stock, "conditional", 4, 3)
//! };
//! let outcome = experiment.run(&db).await?;
//! assert_eq!((outcome.acknowledged, outcome.refused), (5, 7));
//! assert_eq!(outcome.invariant.held, Some(true)); // no-oversell, proven by the item's row
//! # db.close().await;
//! # for suffix in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{suffix}", path.display())); }
//! # Ok(())
//! # }
//! ```
//!
//! # Adding a workload
//! 1. Its tables: a migration per backend under `crates/core/migrations/`; its SQL and typed
//!    `Session` calls: a file in `db/workloads/`.
//! 2. A file here with a strategy enum implementing [`WorkloadStrategy`] and a type implementing
//!    [`Scenario`] (setup, `next_op`, `attempt` per strategy, `state`, `check`).
//! 3. A variant of [`Workload`], with its name, invariant and strategies, and its arm in
//!    [`WorkloadExperiment::run_on`]; its sizes in [`Sizes`].

/// The settings of one run of a workload, their checks, and the dispatch to its scenario.
mod experiment;
/// The invariant's verdict: its name, whether it held, the violations counted.
mod invariant;
/// The operations acknowledged and in doubt, which the invariant is checked against.
mod ledger;
/// What an operation's attempt sees (its worker, attempt, the race gate) and how it may answer.
mod op;
/// A run's outcome: the counts, the invariant, the figures.
mod outcome;
/// The seeded generator that makes a worker's operations reproducible.
mod rng;
/// The run: rows, connections, workers started together, the proof.
mod runner;
/// The traits a workload implements.
mod scenario;
/// The sizes of a workload's rows (stock, accounts), each with its default.
mod sizes;
/// `stock`: buy one of an item whose stock is below the demand.
mod stock;
/// `transfer`: move an amount between two accounts.
mod transfer;
/// One worker's loop: operations, retries, stop.
mod worker;
/// The workload names and what each offers.
mod workloads;

pub use self::experiment::WorkloadExperiment;
pub use self::invariant::Invariant;
pub use self::ledger::Ledger;
pub use self::op::{Answer, OpCtx};
pub use self::outcome::WorkloadOutcome;
pub use self::rng::Rng;
pub use self::scenario::{Scenario, TxKind, WorkloadStrategy};
pub use self::sizes::Sizes;
pub use self::stock::{Stock, StockStrategy};
pub use self::transfer::{Transfer, TransferStrategy};
pub use self::workloads::{UnknownWorkload, Workload};
