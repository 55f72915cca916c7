//! The command line: `racelab serve | lab | bench | anomalies | spec | migrate`. Parses it, sets up logging,
//! runs one subcommand and prints its `Failure` (cli/failure.rs) as `error: ...` with its exit code.
//!
//! Never prints a password: clap's own errors, which repeat what was typed, are redacted here; every
//! other message comes from errors that name a URL only in its redacted form.

mod anomalies;
mod bench;
mod failure;
mod lab;
mod lab_workloads;
mod matrix;
mod migrate;
mod output;
mod serve;
mod spec;
mod strategies;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Dotenv, LogArgs};

/// Show, measure and prevent lost updates on PostgreSQL, MariaDB/MySQL and SQLite.
#[derive(Debug, Parser)]
// The help wraps to the terminal, at most 100 columns: longer lines are hard to read.
#[command(name = "racelab", version, about, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service: the page at /, the /test-db endpoints, /docs, /health, /metrics.
    Serve(serve::ServeArgs),
    /// Run strategies side by side (N workers x M increments) and show what each lost or cost.
    Lab(lab::LabArgs),
    /// Measure throughput and latency of strategies as workers grow; tables, JSON, CSV, SVG charts.
    Bench(bench::BenchArgs),
    /// Run Hermitage's isolation tests (G0 ... G2, lost update) on every isolation level of a database.
    Anomalies(anomalies::AnomaliesArgs),
    /// Run PostgreSQL isolation-tester spec files: your own interleavings of sessions, step by step.
    Spec(spec::SpecArgs),
    /// Every workload's strategies at every isolation level of each database given: docs/workloads.md.
    Matrix(matrix::MatrixArgs),
    /// Apply the database migrations and exit.
    Migrate(migrate::MigrateArgs),
}

/// Parses the command line. clap repeats an argument it did not expect, and a database URL typed
/// without `--database-url` (`racelab lab postgres://u:pw@h/db`) is one: that error is printed with
/// passwords hidden, as every other message is. Help and version are printed as clap prints them.
pub fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(err) if err.use_stderr() => {
            eprint!("{}", redact_words(&err.render().to_string()));
            Err(ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2)))
        }
        Err(err) => err.exit(),
    }
}

/// Each space-separated word of `text` (quotes around it kept) with any password in it hidden.
fn redact_words(text: &str) -> String {
    let word = |word: &str| {
        let inner = word.trim_matches('\'');
        if inner.is_empty() { word.to_owned() } else { word.replacen(inner, &racelab_core::db::redact(inner), 1) }
    };
    let line = |line: &str| line.split(' ').map(word).collect::<Vec<_>>().join(" ");
    text.split('\n').map(line).collect::<Vec<_>>().join("\n")
}

/// Runs the parsed command line; prints any failure to stderr. `dotenv` is the `.env` file read, if
/// one was, which `lab` names and `serve` logs.
pub async fn run(cli: Cli, dotenv: Option<Dotenv>) -> ExitCode {
    let default_filter = match cli.command {
        Command::Serve(_) => "info,sqlx=warn",
        _ => "warn",
    };
    crate::telemetry::init(cli.log.filter.as_deref().unwrap_or(default_filter), cli.log.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve::run(args, dotenv).await,
        Command::Lab(args) => lab::run(args, dotenv).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Anomalies(args) => anomalies::run(args).await,
        Command::Spec(args) => spec::run(args).await,
        Command::Matrix(args) => matrix::run(args).await,
        Command::Migrate(args) => migrate::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.is_quiet() {
                eprintln!("error: {failure}");
            }
            ExitCode::from(failure.code())
        }
    }
}
