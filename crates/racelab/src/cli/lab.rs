//! `racelab lab`: every chosen strategy, one after the other, N workers x M increments on a fresh row
//! each; a table with a verdict per strategy, or one JSON document.
//!
//! A failure never hides what was done: the table (or JSON) of the strategies that ran is printed
//! first, then the command ends non-zero saying which strategy stopped it, or which lost its database.

use std::io::IsTerminal;

use clap::Args;
use racelab_core::{ConnectOptions, Database, Experiment, LockMode, Outcome, RetryPolicy, Strategy, Target};
use serde::Serialize;

use super::failure::Failure;
use super::lab_workloads::{self, Chosen, WorkloadArgs};
use super::output::say;
use super::strategies::{NotRun, not_run, parse_strategies};
use crate::config::{DatabaseArgs, Dotenv, RetryArgs, ShardArgs, sqlite_file};
use crate::http::lab::keep_default_post;
use crate::report::table;
use crate::report::text::{note, short_server_name};

/// The flags of `racelab lab`, in the order a user reaches for them: what runs (`-s`, `-w`, `-n`,
/// `--force-race`), how it prints, then the rarer ones; the database and tuning flags follow under
/// headings of their own (see [`DatabaseArgs`]).
#[derive(Debug, Args)]
pub struct LabArgs {
    /// Strategies to run: all, or a comma-separated list of naive, atomic, pessimistic,
    /// pessimistic-nowait, pessimistic-skip-locked, optimistic, versioned, versioned-no-retry,
    /// serializable, advisory, sharded.
    #[arg(long, short = 's', default_value = "all")]
    pub strategy: String,

    /// Concurrent workers, each on its own connection (1 to 256).
    #[arg(long, short = 'w', default_value_t = 2)]
    pub workers: usize,

    /// Increments per worker (1 to 1,000,000).
    #[arg(long, short = 'n', default_value_t = 25)]
    pub increments: u64,

    /// Make every worker read before any writes: the lost update forced, not left to chance.
    ///
    /// On each worker's first increment, for the strategies that read without a lock.
    #[arg(long)]
    pub force_race: bool,

    /// Print one JSON document instead of the table.
    #[arg(long, conflicts_with = "wide")]
    pub json: bool,

    /// Print every column on one line per strategy.
    ///
    /// The default stacks each verdict under its figures to fit 80 columns.
    #[arg(long)]
    pub wide: bool,

    /// Pessimistic lock mode: wait, nowait or skip-locked.
    #[arg(long, default_value = "wait")]
    pub lock_mode: LockMode,

    /// Run on this post (created if missing), not a fresh row per strategy.
    ///
    /// So that separate processes (one per node, say) can share a row.
    #[arg(long)]
    pub post: Option<i64>,

    /// Times one increment refused by a lock (NOWAIT, SKIP LOCKED, a lock timeout) is tried again.
    ///
    /// 0: a lock mode that fails fast fails on the first refusal.
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

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct LabReport {
    pub database: DatabaseInfo,
    pub workers: usize,
    pub increments: u64,
    pub results: Vec<Outcome>,
    /// The strategies `all` left out on this database, and why (as the table's notes say).
    pub not_run: Vec<NotRun>,
}

#[derive(Debug, Serialize)]
pub struct DatabaseInfo {
    pub backend: racelab_core::Backend,
    /// The first node's URL, without its password.
    pub url: String,
    pub version: String,
    /// Every node's URL, without its password; an outcome's `nodes[].node` counts from 1 in this list.
    pub nodes: Vec<String>,
    /// The SQLite file's absolute path (SQLite only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// The `--json` document of a lab that could not finish: what it has, and why it stopped.
#[derive(Debug, Serialize)]
struct StoppedReport<'a> {
    #[serde(flatten)]
    report: &'a LabReport,
    /// The strategy that could not run, and why.
    stopped: String,
}

/// One debug span per run; `skip_all` because the arguments hold the database URL, password included.
#[tracing::instrument(level = "debug", name = "lab", skip_all,
    fields(strategy = %args.strategy, workers = args.workers, increments = args.increments))]
pub async fn run(args: LabArgs, dotenv: Option<Dotenv>) -> Result<(), Failure> {
    // Any workload but the counter alone (`--workload` not given, or `counter`) runs in its own module;
    // the counter's path and output stay as they always were.
    match args.workloads.chosen(args.post)? {
        Chosen::Counter => {}
        chosen => return lab_workloads::run(&args, chosen, dotenv).await,
    }
    let (policy, options, strategies) = plan(&args)?;
    let backend = options[0].url.backend();
    let mut nodes = Vec::with_capacity(options.len());
    for node in options {
        nodes.push(Database::connect(node).await?);
    }
    let version = nodes[0].server_version().await.map_err(Failure::runtime_from)?;
    if args.post.is_none() {
        keep_default_post(&nodes[0]).await.map_err(Failure::runtime_from)?;
    }
    let urls: Vec<String> = nodes.iter().map(Database::redacted_url).collect();
    let file = sqlite_file(&urls[0]);
    if !args.json {
        say(header(&args, &urls, &short_server_name(backend, &version), file.as_deref(), dotenv.as_ref()))?;
    }
    let ran = run_strategies(&args, &nodes, policy, strategies).await;
    for db in &nodes {
        db.close().await;
    }

    let report = LabReport {
        database: DatabaseInfo { backend, url: urls[0].clone(), version, nodes: urls, file },
        workers: args.workers,
        increments: args.increments,
        results: ran.results,
        not_run: not_run(&args.strategy, backend),
    };
    print(&args, &report, ran.stopped.as_ref())?;
    // The table (or JSON) of what was done is out; a failure ends the command non-zero.
    if ran.stopped.is_none() && !ran.lost_at_failover.is_empty() {
        return Err(Failure::runtime(format!(
            "acknowledged increments are missing after a failover ({}): asynchronous replication lost them; \
             synchronous replication (scripts/pgha up --sync) prevents it",
            ran.lost_at_failover.join(", ")
        )));
    }
    match (ran.stopped, ran.interrupted.is_empty()) {
        (Some(why), _) => Err(why),
        (None, false) => Err(Failure::runtime(format!(
            "the database went away during {}: see the in-doubt and failed increments above",
            ran.interrupted.join(", ")
        ))),
        (None, true) => Ok(()),
    }
}

/// Checks the flags before anything connects: the retry policy, one node's connect options per URL,
/// and the strategies to run (with the lock mode and slot count asked for).
pub(super) fn plan(args: &LabArgs) -> Result<(RetryPolicy, Vec<ConnectOptions>, Vec<Strategy>), Failure> {
    let (policy, options) = plan_run(args)?;
    let strategies = parse_strategies(&args.strategy, options[0].url.backend())?
        .into_iter()
        .map(|s| match s {
            Strategy::Pessimistic(LockMode::Wait) => Strategy::Pessimistic(args.lock_mode),
            other => other.with_slots(args.shard.slots),
        })
        .collect();
    Ok((policy, options, strategies))
}

/// The checks and settings every workload shares: the sizes, the retry policy, one node's connect
/// options per URL.
pub(super) fn plan_run(args: &LabArgs) -> Result<(RetryPolicy, Vec<ConnectOptions>), Failure> {
    // Checked here rather than by a clap range: the message names the flag and its bounds as users
    // have always read it ("--workers must be between 1 and 256, got 0"); clap's would end in
    // "0 is not in 1..=256".
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
    let policy = args.retry.policy().map_err(Failure::usage_from)?;
    // One connection per worker of the node, and one for reading the counter.
    let options = args.database.connect_options_each(args.database.workers_per_node(args.workers) as u32 + 1)?;
    Ok((policy, options))
}

/// "racelab lab on URL (server)", the SQLite file's absolute path, the settings a `.env` gave, and the
/// size of each run; several nodes one per line, numbered as the per-node table numbers them.
pub(super) fn header(
    args: &LabArgs,
    urls: &[String],
    server: &str,
    file: Option<&str>,
    dotenv: Option<&Dotenv>,
) -> String {
    let place = match urls {
        [one] => format!("{one} ({server})"),
        many => {
            let listed: Vec<String> = many.iter().enumerate().map(|(i, url)| format!("  {}: {url}", i + 1)).collect();
            format!("{} nodes of {server}:\n{}", many.len(), listed.join("\n"))
        }
    };
    let mut lines = vec![format!("racelab lab on {place}")];
    lines.extend(file.map(|file| format!("the SQLite file {file}")));
    lines.extend(dotenv.and_then(Dotenv::summary));
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    lines.push(format!(
        "{} x {} per strategy",
        plural(args.workers as u64, "worker", "workers"),
        plural(args.increments, "increment", "increments")
    ));
    lines.join("\n")
}

/// What the strategies did: the outcome of each that ran, the failure that stopped the rest, and the
/// strategies during which the database went away.
pub(super) struct Ran {
    pub(super) results: Vec<Outcome>,
    pub(super) stopped: Option<Failure>,
    pub(super) interrupted: Vec<&'static str>,
    /// Acknowledged increments the new primary lacked after a failover, per strategy.
    pub(super) lost_at_failover: Vec<String>,
}

/// Runs each strategy in turn on the nodes; one that cannot start stops the rest.
pub(super) async fn run_strategies(
    args: &LabArgs,
    nodes: &[Database],
    policy: RetryPolicy,
    strategies: Vec<Strategy>,
) -> Ran {
    let progress = !args.json && std::io::stderr().is_terminal();
    let mut ran = Ran {
        results: Vec::with_capacity(strategies.len()),
        stopped: None,
        interrupted: Vec::new(),
        lost_at_failover: Vec::new(),
    };
    for strategy in strategies {
        if progress {
            eprint!("  running {strategy}...\r");
        }
        let experiment = Experiment {
            retry: policy,
            force_race: args.force_race,
            lock_retries: args.lock_retries,
            target: args.post.map_or(Target::FreshPost, Target::Post),
            ..Experiment::new(strategy, args.workers, args.increments)
        };
        match experiment.run_on(nodes, &Default::default()).await {
            Ok(outcome) => {
                // A node (or the server) went away during the run: the outcome says what was done;
                // the next strategy runs if it can start, and the command ends non-zero. A failover
                // the run went on through, losing nothing acknowledged, is accounted for (its
                // `failover` part), not a failure; one that lost acknowledged increments is.
                if let Some(lost) = outcome.lost_at_failover() {
                    ran.lost_at_failover.push(format!("{lost} during {strategy}"));
                } else if outcome.database_unavailable() && !outcome.survived_failover() {
                    ran.interrupted.push(strategy.name());
                }
                ran.results.push(outcome);
            }
            Err(err) => {
                ran.stopped = Some(Failure::runtime(format!("{strategy} could not run: {err}")).because(err));
                break;
            }
        }
    }
    if progress {
        eprint!("{:40}\r", "");
    }
    ran
}

/// The JSON document, or the tables and the notes on what `all` left out.
fn print(args: &LabArgs, report: &LabReport, stopped: Option<&Failure>) -> Result<(), Failure> {
    if args.json {
        let text = match stopped {
            Some(why) => serde_json::to_string_pretty(&StoppedReport { report, stopped: why.to_string() }),
            None => serde_json::to_string_pretty(report),
        };
        return say(text.map_err(Failure::runtime_from)?);
    }
    if !report.results.is_empty() {
        let table =
            if args.wide { table::outcomes(&report.results).to_string() } else { table::compact(&report.results) };
        say(table)?;
        if report.database.nodes.len() > 1 {
            say(table::per_node(&report.results))?;
        }
    }
    for skipped in &report.not_run {
        say(note(&skipped.sentence()))?;
    }
    Ok(())
}
