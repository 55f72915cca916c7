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
//! Every workload runs through one generic runner here ([`WorkloadExperiment`]), which reuses the
//! experiment's pieces (its fates, statistics, progress, race gate, retry policy and the spreading of
//! workers over nodes). The counter ([`Workload::Counter`]) is one of them ([`CounterWorkload`]: one
//! increment per operation, by the counter's own [`Strategy`](crate::Strategy) units of work), and
//! still the [`Experiment`](crate::Experiment) as it always was, which keeps what only the counter has
//! (runs for a duration, an existing post, failover figures): the lab runs the counter through the
//! runner only at an `--isolation` level.
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
//! 1. Its tables: a new migration per backend (`crates/core/migrations/{postgres,mysql,sqlite}/`, the
//!    next number, same shape). Its SQL: a file in `db/workloads/` with `static`
//!    [`Statement`](crate::db)s (`?` placeholders, `{for_update}`, `{returning_id}`) and an
//!    `impl Session` block of `pub(crate)` typed calls built on `Session::exec`, `exec_unless_check`
//!    (a CHECK's refusal as `None`), `fetch_ints`, `fetch_all_ints`, `fetch_all_settled` (the
//!    after-the-run read, causal on Galera) and `insert_id`; `Session::begin_at` opens a transaction
//!    at a level. Dialect differences beyond the two tokens go in `db/{postgres,mysql,sqlite}.rs`.
//! 2. A file here: a strategy enum implementing [`WorkloadStrategy`] (`ALL`, `name`, `tx` as a
//!    [`TxKind`], `retries`, `safe`) and a unit type implementing [`Scenario`] (`WORKLOAD`, `INVARIANT`,
//!    `SENTENCE`; `validate`, `setup`, `sizes`, `next_op` from the worker's [`Rng`], `forced_op` and
//!    `races` for `force_race`, `attempt` per strategy calling [`OpCtx::after_read`] between its read
//!    and its write and answering [`Answer::Done`] or [`Answer::Refused`], `state`, and `check`
//!    returning an [`Invariant`] from the state and the [`Ledger`], in-doubt operations bounding it).
//!    An attempt runs inside the transaction the runner opened: where a strategy's SQL already exists
//!    as a unit of work that leaves BEGIN and COMMIT to its caller (the counter's
//!    [`Strategy::unit`](crate::Strategy::unit)), call it rather than write it again; what it holds
//!    beyond the transaction is released in [`Scenario::release`].
//! 3. Its variant of [`Workload`] (`ALL`, `name`, `invariant`, `invariant_sentence`, `strategies`,
//!    `is_safe`, the unknown-name message), its arms in [`WorkloadExperiment::validate_on`] and
//!    [`WorkloadExperiment::run_on`], its sizes in [`Sizes`] and their flags in the lab's
//!    `WorkloadArgs` (crates/racelab/src/cli/lab_workloads.rs). Everything else (runner, accounting,
//!    JSON, tables) is generic.
//! 4. Its tests in `crates/core/tests/engine/workload_<name>.rs` (`on_every_backend!`); a test named
//!    `..._with_16_workers` joins the `many-connections` nextest group by its name.

/// `booking`: book a (room, slot) if it is free.
mod booking;
/// `counter`: the counter's increments and strategies, as one workload.
mod counter;
/// The settings of one run of a workload, their checks, and the dispatch to its scenario.
mod experiment;
/// The invariant's verdict: its name, whether it held, the violations counted.
mod invariant;
/// The operations acknowledged and in doubt, which the invariant is checked against.
mod ledger;
/// `oncall`: a doctor goes off call if another stays on call (write skew).
mod oncall;
/// What an operation's attempt sees (its worker, attempt, the race gate) and how it may answer.
mod op;
/// A run's outcome: the counts, the invariant, the figures.
mod outcome;
/// `queue`: claim the oldest pending job and run it, exactly once.
mod queue;
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
/// A small run's trace: each attempt, and the operations that broke the invariant.
mod trace;
/// `transfer`: move an amount between two accounts.
mod transfer;
/// One worker's loop: operations, retries, stop.
mod worker;
/// The workload names and what each offers.
mod workloads;

pub use self::booking::{Booking, BookingStrategy};
pub use self::counter::{CounterFixture, CounterWorkload};
pub use self::experiment::WorkloadExperiment;
pub use self::invariant::Invariant;
pub use self::ledger::Ledger;
pub use self::oncall::{OnCall, OnCallStrategy};
pub use self::op::{Answer, OpCtx};
pub use self::outcome::WorkloadOutcome;
pub use self::queue::{Queue, QueueStrategy};
pub use self::rng::Rng;
pub use self::scenario::{Scenario, TxKind, WorkloadStrategy};
pub use self::sizes::Sizes;
pub use self::stock::{Stock, StockStrategy};
pub use self::trace::{Marked, OpEvent, OpStep, OpTrace, Role};
pub use self::transfer::{Transfer, TransferStrategy};
pub use self::workloads::{UnknownWorkload, Workload};
