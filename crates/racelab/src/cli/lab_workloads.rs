//! `racelab lab --workload stock|transfer|all`: the workloads, each strategy one after the other on
//! rows of its own; one table per workload (its invariant, its verdicts), or one JSON document.
//! `--workload counter` (or no `--workload`) is `lab` as it always was (cli/lab.rs); with `--isolation`
//! the counter runs here, through the same runner as the others, at that level. Without `--isolation`,
//! `--workload all` runs the counter as it always was (its table and JSON are the experiment's).
//!
//! As the counter's lab, a failure never hides what was done: the tables (or JSON) come first, then
//! the command ends non-zero saying why: a strategy that could not run, a database that went away, or a
//! safe strategy whose invariant broke.

use std::io::IsTerminal;

use clap::Args;
use racelab_core::workload::Sizes;
use racelab_core::{Database, Isolation, Outcome, Workload, WorkloadExperiment, WorkloadOutcome};
use serde::Serialize;

use super::failure::Failure;
use super::lab::{DatabaseInfo, LabArgs, header, plan, plan_run, run_strategies};
use super::output::say;
use super::strategies::not_run;
use crate::config::{Dotenv, sqlite_file};
use crate::http::lab::keep_default_post;
use crate::report::text::{COMPACT_WIDTH, note, short_server_name, wrap};
use crate::report::{table, workload_table};

/// The flags that choose a workload and size its rows.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Workloads")]
pub struct WorkloadArgs {
    /// The race to run: counter (the default), stock, transfer, oncall, booking, queue, or all.
    ///
    /// stock: buy one of an item whose stock is below the demand (invariant no-oversell). transfer:
    /// move a random amount between two accounts (invariant money-conserved). oncall: a doctor goes
    /// off call if another stays on call (invariant someone-on-call). queue: claim the oldest
    /// pending job and run it (invariant exactly-once). booking: book a (room, slot) of --rooms x
    /// --slots if free (invariant no-double-booking). all: every workload's
    /// strategies, one table per workload (-s must then be all). For a workload, -n is operations
    /// per worker.
    #[arg(long, value_name = "WORKLOAD")]
    pub workload: Option<String>,

    /// Isolation level of a workload's transactions.
    ///
    /// read-uncommitted, read-committed, repeatable-read or serializable; for the counter with
    /// --workload counter (or all). The serializable strategy always runs at SERIALIZABLE. PostgreSQL runs
    /// read-uncommitted as read committed; SQLite's transactions are all serializable (a level opens a
    /// deferred transaction, BEGIN IMMEDIATE for the locking strategies). Default: the database's own.
    #[arg(long, value_name = "LEVEL")]
    pub isolation: Option<Isolation>,

    /// stock: units in stock at the start [default: workers x operations / 2].
    #[arg(long, hide_short_help = true, allow_hyphen_values = true)]
    pub stock: Option<i64>,

    /// transfer: accounts the transfers move money between (2 to 10000) [default: 8].
    #[arg(long, hide_short_help = true)]
    pub accounts: Option<usize>,

    /// oncall: doctors on call per shift at the start, one shift per pair of workers (1 to 1000) [default: 4].
    #[arg(long, hide_short_help = true)]
    pub doctors: Option<usize>,

    /// queue: jobs in the queue at the start (0 to 100000) [default: workers x operations / 2].
    #[arg(long, hide_short_help = true)]
    pub jobs: Option<usize>,

    /// booking: rooms to book (1 to 10000) [default: 4]; their time slots per room are --slots.
    #[arg(long, hide_short_help = true)]
    pub rooms: Option<usize>,

    /// The seed of the workers' operations: the same seed, the same operations.
    #[arg(long, default_value_t = WorkloadExperiment::DEFAULT_SEED, hide_short_help = true)]
    pub seed: u64,
}

/// What `--workload` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// The counter alone: `lab` as it always was.
    Counter,
    One(Workload),
    All,
}

impl WorkloadArgs {
    /// The workload asked for, with its flags checked against it (`post`: the counter's `--post`).
    pub fn chosen(&self, post: Option<i64>) -> Result<Chosen, Failure> {
        let chosen = match self.workload.as_deref().map(str::trim) {
            None => Chosen::Counter,
            Some(name) if name.eq_ignore_ascii_case("all") => Chosen::All,
            Some(name) => match name.parse::<Workload>().map_err(|err| Failure::usage(format!("{err}, or all")))? {
                // At a level, the counter is one workload of the generic runner.
                Workload::Counter if self.isolation.is_some() => Chosen::One(Workload::Counter),
                Workload::Counter => Chosen::Counter,
                workload => Chosen::One(workload),
            },
        };
        if post.is_some() {
            match chosen {
                Chosen::One(Workload::Counter) | Chosen::All if self.isolation.is_some() => {
                    return Err(Failure::usage(
                        "--post applies to the counter without --isolation: at a level it makes a fresh post for \
                         each run",
                    ));
                }
                Chosen::One(workload) => {
                    return Err(Failure::usage(format!(
                        "--post applies to the counter: the {workload} workload makes rows of its own for each run"
                    )));
                }
                _ => {}
            }
        }
        if chosen == Chosen::Counter && self.isolation.is_some() {
            return Err(Failure::usage(
                "--isolation runs the workloads' runner: add --workload counter (or stock, transfer, oncall, \
                 booking, queue, all)",
            ));
        }
        if chosen == Chosen::Counter {
            let given = [
                ("--stock", self.stock.is_some()),
                ("--accounts", self.accounts.is_some()),
                ("--doctors", self.doctors.is_some()),
                ("--jobs", self.jobs.is_some()),
                ("--rooms", self.rooms.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
                let others: Vec<&str> =
                    Workload::ALL.iter().filter(|w| **w != Workload::Counter).map(|w| w.name()).collect();
                return Err(Failure::usage(format!(
                    "{flag} applies to the workloads beyond the counter: add --workload {} or all",
                    others.join(", ")
                )));
            }
        }
        Ok(chosen)
    }

    pub(crate) fn sizes(&self) -> Sizes {
        Sizes {
            stock: self.stock,
            accounts: self.accounts.unwrap_or(Sizes::DEFAULT_ACCOUNTS),
            doctors: self.doctors.unwrap_or(Sizes::DEFAULT_DOCTORS),
            jobs: self.jobs,
            rooms: self.rooms.unwrap_or(Sizes::DEFAULT_ROOMS),
            ..Sizes::default()
        }
    }
}

/// The results of one workload, in the `--json` document.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum WorkloadResults {
    Counter { workload: Workload, invariant: &'static str, results: Vec<Outcome> },
    Other { workload: Workload, invariant: &'static str, results: Vec<WorkloadOutcome> },
}

/// The `--json` document of `lab --workload`.
#[derive(Debug, Serialize)]
struct WorkloadLabReport {
    database: DatabaseInfo,
    workers: usize,
    /// Operations (increments, for the counter) per worker.
    operations: u64,
    /// The level asked for, or `default`.
    isolation: String,
    seed: u64,
    /// One entry per workload run, in order.
    workloads: Vec<WorkloadResults>,
    /// Why the lab stopped before the end, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped: Option<String>,
}

/// Runs the chosen workloads, prints their tables (or JSON), then fails if anything must fail the run.
pub async fn run(args: &LabArgs, chosen: Chosen, dotenv: Option<Dotenv>) -> Result<(), Failure> {
    let workloads: Vec<Workload> = match chosen {
        Chosen::Counter => vec![Workload::Counter],
        Chosen::One(workload) => vec![workload],
        Chosen::All => Workload::ALL.to_vec(),
    };
    let (policy, options) = plan_run(args)?;
    let total = (args.workers as u64).saturating_mul(args.increments);
    // At a level the counter runs through the workloads' runner, which opens every transaction at it;
    // without one, as it always was (the experiment: its table, its JSON).
    let counter_as_workload = args.workloads.isolation.is_some();
    let through_runner = |w: &Workload| *w != Workload::Counter || counter_as_workload;
    if workloads.iter().any(through_runner) && total > WorkloadExperiment::MAX_OPERATIONS_PER_RUN {
        return Err(Failure::usage(format!(
            "--workers x --increments must be at most {} for a workload (each operation is kept for the proof), \
             got {total}",
            WorkloadExperiment::MAX_OPERATIONS_PER_RUN
        )));
    }
    let all = args.strategy.split(',').any(|name| name.trim().eq_ignore_ascii_case("all"));
    if chosen == Chosen::All && !all {
        return Err(Failure::usage("--workload all runs every workload's strategies: -s must be all"));
    }
    let counter_strategies = if workloads.contains(&Workload::Counter) { Some(plan(args)?.2) } else { None };
    let mut plans = Vec::with_capacity(workloads.len());
    for workload in &workloads {
        let strategies = match workload {
            // The experiment's list: `all` without what the backend lacks, `pessimistic` in --lock-mode.
            Workload::Counter if counter_as_workload => counter_strategies.iter().flatten().map(|s| s.name()).collect(),
            Workload::Counter => Vec::new(),
            other => strategies_of(*other, &args.strategy)?,
        };
        plans.push((*workload, strategies));
    }
    let counter_strategies = counter_strategies.filter(|_| !counter_as_workload);
    // booking's slots per room are --slots, which the sharded strategy's slot rows share.
    let sizes = Sizes { slots: usize::from(args.shard.slots), ..args.workloads.sizes() };
    let backend = options[0].url.backend();
    let mut nodes = Vec::with_capacity(options.len());
    for node in options {
        nodes.push(Database::connect(node).await?);
    }
    let version = nodes[0].server_version().await.map_err(Failure::runtime_from)?;
    if counter_strategies.is_some() && args.post.is_none() {
        keep_default_post(&nodes[0]).await.map_err(Failure::runtime_from)?;
    }
    let urls: Vec<String> = nodes.iter().map(Database::redacted_url).collect();
    let file = sqlite_file(&urls[0]);
    let isolation = args.workloads.isolation.map_or("default", Isolation::name);
    if !args.json {
        let mut lines = header(args, &urls, &short_server_name(backend, &version), file.as_deref(), dotenv.as_ref());
        // The last line sized the counter's run; a workload's are operations.
        if let Some(cut) = lines.rfind('\n') {
            lines.truncate(cut);
        }
        let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        lines.push_str(&format!(
            "\n{} x {} per strategy, isolation {isolation}, seed {}",
            plural(args.workers as u64, "worker", "workers"),
            plural(args.increments, "operation", "operations"),
            args.workloads.seed
        ));
        say(lines)?;
    }

    let progress = !args.json && std::io::stderr().is_terminal();
    let mut report = WorkloadLabReport {
        database: DatabaseInfo { backend, url: urls[0].clone(), version, nodes: urls, file },
        workers: args.workers,
        operations: args.increments,
        isolation: isolation.to_owned(),
        seed: args.workloads.seed,
        workloads: Vec::new(),
        stopped: None,
    };
    let mut stopped = None;
    let mut interrupted: Vec<String> = Vec::new();
    let mut broken: Vec<String> = Vec::new();
    'workloads: for (workload, strategies) in plans {
        if let (Workload::Counter, Some(counter_strategies)) = (workload, &counter_strategies) {
            let ran = run_strategies(args, &nodes, policy, counter_strategies.clone()).await;
            interrupted.extend(ran.interrupted.iter().map(|s| format!("counter {s}")));
            report.workloads.push(WorkloadResults::Counter {
                workload,
                invariant: workload.invariant(),
                results: ran.results,
            });
            if let Some(why) = ran.stopped {
                stopped = Some(why);
                break 'workloads;
            }
            continue;
        }
        let mut results = Vec::with_capacity(strategies.len());
        for strategy in strategies {
            if progress {
                eprint!("  running {workload} {strategy}...\r");
            }
            let experiment = WorkloadExperiment {
                retry: policy,
                force_race: args.force_race,
                lock_retries: args.lock_retries,
                isolation: args.workloads.isolation,
                seed: args.workloads.seed,
                sizes,
                ..WorkloadExperiment::new(workload, strategy, args.workers, args.increments)
            };
            match experiment.run_on(&nodes, &Default::default()).await {
                Ok(outcome) => {
                    if outcome.database_unavailable() {
                        interrupted.push(format!("{workload} {strategy}"));
                    }
                    if outcome.safe_strategy_broke_invariant() {
                        broken.push(format!("{workload} {strategy} ({})", outcome.invariant.detail));
                    }
                    results.push(outcome);
                }
                Err(err) => {
                    stopped =
                        Some(Failure::runtime(format!("{workload} {strategy} could not run: {err}")).because(err));
                    report.workloads.push(WorkloadResults::Other {
                        workload,
                        invariant: workload.invariant(),
                        results,
                    });
                    break 'workloads;
                }
            }
        }
        report.workloads.push(WorkloadResults::Other { workload, invariant: workload.invariant(), results });
    }
    if progress {
        eprint!("{:40}\r", "");
    }
    for db in &nodes {
        db.close().await;
    }
    report.stopped = stopped.as_ref().map(Failure::to_string);
    print(args, &report)?;
    if let Some(why) = stopped {
        return Err(why);
    }
    if !broken.is_empty() {
        return Err(Failure::runtime(format!("a safe strategy broke its invariant: {}", broken.join("; "))));
    }
    if !interrupted.is_empty() {
        return Err(Failure::runtime(format!(
            "the database went away during {}: see the in-doubt and failed operations above",
            interrupted.join(", ")
        )));
    }
    Ok(())
}

/// The strategies `-s` names for `workload` (`all`: every one), each checked.
pub(crate) fn strategies_of(workload: Workload, list: &str) -> Result<Vec<&'static str>, Failure> {
    let known = workload.strategies();
    let mut chosen: Vec<&'static str> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name.eq_ignore_ascii_case("all") {
            chosen.extend(&known);
            continue;
        }
        let Some(strategy) = known.iter().copied().find(|k| k.eq_ignore_ascii_case(name)) else {
            return Err(Failure::usage(format!(
                "unknown {workload} strategy `{name}`; expected one of: {}, or all",
                known.join(", ")
            )));
        };
        chosen.push(strategy);
    }
    if chosen.is_empty() {
        return Err(Failure::usage("no strategy given; use --strategy all or a comma-separated list"));
    }
    let mut seen = std::collections::HashSet::new();
    chosen.retain(|s| seen.insert(*s));
    Ok(chosen)
}

/// The JSON document, or one table per workload.
fn print(args: &LabArgs, report: &WorkloadLabReport) -> Result<(), Failure> {
    if args.json {
        return say(serde_json::to_string_pretty(report).map_err(Failure::runtime_from)?);
    }
    for results in &report.workloads {
        match results {
            WorkloadResults::Counter { results, .. } if !results.is_empty() => {
                let title = format!(
                    "counter: invariant {}: {}",
                    Workload::Counter.invariant(),
                    Workload::Counter.invariant_sentence()
                );
                say(wrap(&title, COMPACT_WIDTH).join("\n"))?;
                say(table::compact(results))?;
                if report.database.nodes.len() > 1 {
                    say(table::per_node(results))?;
                }
                for skipped in not_run(&args.strategy, report.database.backend) {
                    say(note(&skipped.sentence()))?;
                }
            }
            WorkloadResults::Other { workload, results, .. } if !results.is_empty() => {
                say(workload_table::compact(*workload, results))?;
                if report.database.nodes.len() > 1 {
                    let nodes: Vec<_> = results.iter().map(|o| (o.strategy, o.nodes.as_slice())).collect();
                    say(table::per_node_of(&nodes))?;
                }
                if *workload == Workload::Counter {
                    for skipped in not_run(&args.strategy, report.database.backend) {
                        say(note(&skipped.sentence()))?;
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(why) = &report.stopped {
        say(note(why))?;
    }
    Ok(())
}
