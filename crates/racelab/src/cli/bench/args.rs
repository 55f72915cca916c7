//! The flags of `racelab bench`, as clap reads them; checked by [`super::plan`] before anything runs.
//!
//! Declares only: never checks a value here (bounds that need a message of their own are the plan's).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::lab_workloads::WorkloadArgs;
use crate::config::{DatabaseArgs, RetryArgs, ShardArgs, parse_duration};

/// The flags of `racelab bench`, in the order a user reaches for them: what runs (`-s`, `-w`, `-d`),
/// what is written, then the rarer ones; the database and tuning flags follow under headings of their
/// own.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Strategies to run: all, or a comma-separated list of naive, atomic, pessimistic,
    /// pessimistic-nowait, pessimistic-skip-locked, optimistic, versioned, versioned-no-retry,
    /// serializable, advisory, sharded.
    ///
    /// With --workload, the workload's strategies; all is then its safe ones (name an unsafe one to run it).
    #[arg(long, short = 's', default_value = "all")]
    pub strategy: String,

    /// Worker counts to sweep, comma-separated (each 1 to 256).
    ///
    /// Each worker holds its own connection.
    #[arg(long, short = 'w', default_value = "1,2,4,8,16,32,64")]
    pub workers: String,

    /// Measured time per cell, e.g. 10s, 500ms (at most 1h).
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Unmeasured time before each cell's measured window (at most 10m; 0 for none).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write the results as CSV to this file (one line per cell).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Write an SVG chart to this file: throughput and p99 latency vs workers.
    ///
    /// One line per strategy; a cell where increments failed is marked.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,

    /// Print every column of the final table on one line per cell.
    ///
    /// The default fits 80 columns.
    #[arg(long)]
    pub wide: bool,

    /// Run every cell on this post (created if missing) instead of a fresh row per cell.
    ///
    /// So that separate processes can share a row.
    #[arg(long)]
    pub post: Option<i64>,

    /// --workload: operations per worker per cell (1 to 1,000,000) [default: 2000].
    ///
    /// A workload's cell ends after --duration or once every worker has made its operations,
    /// whichever comes first; its rows are fresh, so it has no warm-up. Its sizes default to the
    /// demand (workers x operations): --stock to it, --jobs to it up to 100000, so a bench measures
    /// purchases and claims, not "sold out".
    #[arg(long, short = 'n', hide_short_help = true)]
    pub operations: Option<u64>,

    /// Times one increment refused by a lock (NOWAIT, SKIP LOCKED, a lock timeout) is tried again.
    #[arg(long, env = "RACELAB_LOCK_RETRIES", default_value_t = 0, hide_short_help = true)]
    pub lock_retries: u32,

    #[command(flatten)]
    pub workloads: WorkloadArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub retry: RetryArgs,
    #[command(flatten)]
    pub shard: ShardArgs,
}
