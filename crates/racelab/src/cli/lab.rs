//! `racelab lab`: every chosen strategy, one after the other, N workers x M increments on a fresh row
//! each; a table with a verdict per strategy, or one JSON document.

use std::io::IsTerminal;

use clap::Args;
use racelab_core::{Database, Experiment, LockMode, Outcome, Strategy};
use serde::Serialize;

use super::{Failure, parse_strategies};
use crate::config::{DatabaseArgs, RetryArgs, ShardArgs};
use crate::report::bench::short_server_name;
use crate::report::table;

#[derive(Debug, Args)]
pub struct LabArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub retry: RetryArgs,
    #[command(flatten)]
    pub shard: ShardArgs,

    /// Concurrent workers, each on its own connection (1 to 256).
    #[arg(long, short = 'w', default_value_t = 2)]
    pub workers: usize,

    /// Increments per worker (1 to 1,000,000).
    #[arg(long, short = 'n', default_value_t = 25)]
    pub increments: u64,

    /// Strategies to run: all, or a comma-separated list of naive, atomic, pessimistic,
    /// pessimistic-nowait, pessimistic-skip-locked, optimistic, versioned, versioned-no-retry,
    /// serializable, advisory, sharded.
    #[arg(long, short = 's', default_value = "all")]
    pub strategy: String,

    /// Lock mode of the `pessimistic` strategy: wait, nowait or skip-locked.
    #[arg(long, default_value = "wait")]
    pub lock_mode: LockMode,

    /// Make every worker read before any writes on its first increment: the lost update forced,
    /// not left to chance (strategies that read without a lock).
    #[arg(long)]
    pub force_race: bool,

    /// Print one JSON document instead of the table.
    #[arg(long, conflicts_with = "wide")]
    pub json: bool,

    /// Print every column on one line per strategy (the default stacks each verdict under its figures
    /// to fit 80 columns).
    #[arg(long)]
    pub wide: bool,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct LabReport {
    pub database: DatabaseInfo,
    pub workers: usize,
    pub increments: u64,
    pub results: Vec<Outcome>,
}

#[derive(Debug, Serialize)]
pub struct DatabaseInfo {
    pub backend: racelab_core::Backend,
    pub url: String,
    pub version: String,
}

pub async fn run(args: LabArgs) -> Result<(), Failure> {
    if !(1..=Experiment::MAX_WORKERS).contains(&args.workers) {
        return Err(Failure::usage(format!(
            "--workers must be between 1 and {}, got {}",
            Experiment::MAX_WORKERS,
            args.workers
        )));
    }
    if !(1..=Experiment::MAX_INCREMENTS).contains(&args.increments) {
        return Err(Failure::usage(format!(
            "--increments must be between 1 and {}, got {}",
            Experiment::MAX_INCREMENTS,
            args.increments
        )));
    }
    let policy = args.retry.policy().map_err(|e| Failure::usage(e.to_string()))?;
    let options = args.database.connect_options(args.workers as u32 + 1)?;
    let backend = options.url.backend();
    let strategies: Vec<Strategy> = parse_strategies(&args.strategy, backend)?
        .into_iter()
        .map(|s| match s {
            Strategy::Pessimistic(LockMode::Wait) => Strategy::Pessimistic(args.lock_mode),
            other => other.with_slots(args.shard.slots),
        })
        .collect();

    let db = Database::connect(options).await?;
    let version = db.server_version().await.map_err(|e| Failure::runtime(e.to_string()))?;
    let progress = !args.json && std::io::stderr().is_terminal();
    if !args.json {
        super::say(format_args!(
            "racelab lab on {} ({})\n{} workers x {} increments per strategy",
            db.redacted_url(),
            short_server_name(backend, &version),
            args.workers,
            args.increments
        ))?;
    }

    let mut results = Vec::with_capacity(strategies.len());
    for strategy in strategies {
        if progress {
            eprint!("  running {strategy}...\r");
        }
        let experiment = Experiment {
            retry: policy,
            force_race: args.force_race,
            ..Experiment::new(strategy, args.workers, args.increments)
        };
        let outcome = experiment.run(&db).await.map_err(|e| Failure::runtime(format!("{strategy}: {e}")))?;
        results.push(outcome);
    }
    if progress {
        eprint!("{:40}\r", "");
    }
    db.close().await;

    if args.json {
        let report = LabReport {
            database: DatabaseInfo { backend, url: db.redacted_url(), version },
            workers: args.workers,
            increments: args.increments,
            results,
        };
        let text = serde_json::to_string_pretty(&report).map_err(|e| Failure::runtime(e.to_string()))?;
        super::say(text)?;
    } else if args.wide {
        super::say(table::outcomes(&results))?;
    } else {
        super::say(table::compact(&results))?;
    }
    if !args.json {
        for note in super::not_run_notes(&args.strategy, backend) {
            super::say(table::note(&note))?;
        }
    }
    Ok(())
}
