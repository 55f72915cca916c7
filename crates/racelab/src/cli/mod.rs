//! The command line: `racelab serve | lab | bench | anomalies | migrate`.

mod anomalies;
mod bench;
mod lab;
mod migrate;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::LogArgs;

/// Show, measure and prevent lost updates on PostgreSQL, MariaDB/MySQL and SQLite.
#[derive(Debug, Parser)]
#[command(name = "racelab", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service: the seed's /test-db endpoints, /docs, /redoc, /health, /metrics.
    Serve(serve::ServeArgs),
    /// Run strategies side by side (N workers x M increments) and show what each lost or cost.
    Lab(lab::LabArgs),
    /// Measure throughput and latency of strategies as workers grow; tables, JSON, CSV, SVG charts.
    Bench(bench::BenchArgs),
    /// Run Hermitage's isolation tests (G0 ... G2, lost update) on every isolation level of a database.
    Anomalies(anomalies::AnomaliesArgs),
    /// Apply the database migrations and exit.
    Migrate(migrate::MigrateArgs),
}

/// A failure that ends the command: a message for the user and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// 2 for bad input (as clap uses), 1 for everything else.
    pub code: u8,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: 2 }
    }

    pub fn runtime(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: 1 }
    }

    /// Standard output was closed by its reader (`racelab lab | head -1`): nothing left to say to
    /// anyone, so the command ends quietly, as `cat` and `ls` do, rather than panicking.
    fn closed_pipe() -> Self {
        Self { message: String::new(), code: 0 }
    }
}

/// Prints `text` and a newline on standard output. A reader that went away is not an error worth a
/// message (see [`Failure::closed_pipe`]); any other write error is.
pub fn say(text: impl std::fmt::Display) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::closed_pipe()),
        Err(err) => Err(Failure::runtime(format!("cannot write to standard output: {err}"))),
    }
}

impl From<racelab_core::db::UrlError> for Failure {
    fn from(err: racelab_core::db::UrlError) -> Self {
        Failure::usage(err.to_string())
    }
}

impl From<racelab_core::db::ConnectError> for Failure {
    fn from(err: racelab_core::db::ConnectError) -> Self {
        if let racelab_core::db::ConnectError::Url(url) = err {
            return url.into();
        }
        match connect_hint(&err) {
            Some(hint) => Failure::runtime(format!("{err}\n  hint: {hint}")),
            None => Failure::runtime(err.to_string()),
        }
    }
}

/// What to do about a failed connection, said only where it is true: "check that the server runs"
/// only when nothing answered.
fn connect_hint(err: &racelab_core::db::ConnectError) -> Option<String> {
    use racelab_core::Backend;
    use racelab_core::db::{ConnectError, Refusal};
    let hint = match err {
        ConnectError::Unreachable { backend: Backend::Sqlite, .. } => {
            "check that the file's directory exists and is writable, or set DATABASE_URL / --database-url".to_owned()
        }
        ConnectError::Unreachable { .. } => {
            "check that the server runs and listens at that address, or set DATABASE_URL / --database-url".to_owned()
        }
        ConnectError::Refused { refusal: Refusal::AccessDenied, .. } => {
            "check the user name and password in DATABASE_URL / --database-url, and the user's rights".to_owned()
        }
        ConnectError::Refused { refusal: Refusal::NoSuchDatabase { create_with }, .. } => match create_with {
            Some(command) => format!("create it: {command}"),
            None => "create the database, or name another in DATABASE_URL / --database-url".to_owned(),
        },
        ConnectError::Refused { refusal: Refusal::TooManyConnections, .. } => {
            "the server's max_connections (or the user's connection limit) is reached: close other clients, \
             use fewer --workers, or raise the limit"
                .to_owned()
        }
        ConnectError::InitStatement { .. } => "fix or remove that --init-sql statement (RACELAB_INIT_SQL)".to_owned(),
        ConnectError::NodeNotReady { .. } => {
            "the Galera node is outside the Primary component or not prepared: use another node, or wait for it \
             to rejoin (scripts/galera status)"
                .to_owned()
        }
        ConnectError::Refused { refusal: Refusal::Other, .. } | ConnectError::Migrate { .. } | ConnectError::Url(_) => {
            return None;
        }
    };
    Some(hint)
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

/// Runs the parsed command line; prints any failure to stderr.
pub async fn run(cli: Cli) -> ExitCode {
    let default_filter = match cli.command {
        Command::Serve(_) => "info,sqlx=warn",
        _ => "warn",
    };
    crate::telemetry::init(cli.log.filter.as_deref().unwrap_or(default_filter), cli.log.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Lab(args) => lab::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Anomalies(args) => anomalies::run(args).await,
        Command::Migrate(args) => migrate::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("error: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}

/// Parses a comma-separated strategy list (`all` = every strategy the backend supports).
pub fn parse_strategies(list: &str, backend: racelab_core::Backend) -> Result<Vec<racelab_core::Strategy>, Failure> {
    let mut strategies = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name.eq_ignore_ascii_case("all") {
            strategies.extend(racelab_core::Strategy::all_for(backend));
            continue;
        }
        let strategy: racelab_core::Strategy =
            name.parse().map_err(|e: racelab_core::strategy::UnknownStrategy| Failure::usage(e.to_string()))?;
        if !strategy.supported_on(backend) {
            return Err(Failure::usage(format!("the {strategy} strategy {}", why_not_supported(strategy, backend))));
        }
        strategies.push(strategy);
    }
    if strategies.is_empty() {
        return Err(Failure::usage("no strategy given; use --strategy all or a comma-separated list"));
    }
    let mut seen = std::collections::HashSet::new();
    strategies.retain(|s| seen.insert(*s));
    Ok(strategies)
}

/// Why a strategy cannot run on a backend, to follow "the X strategy".
fn why_not_supported(strategy: racelab_core::Strategy, backend: racelab_core::Backend) -> String {
    match strategy {
        racelab_core::Strategy::Advisory => format!(
            "is not supported on {backend}, which has no application locks (PostgreSQL has \
             pg_advisory_xact_lock, MariaDB/MySQL GET_LOCK)"
        ),
        _ => format!("is not supported on {backend}"),
    }
}

/// What `all` left out on this backend, and why: a strategy's row is never dropped without a word.
pub fn not_run_notes(list: &str, backend: racelab_core::Backend) -> Vec<String> {
    if !list.split(',').any(|name| name.trim().eq_ignore_ascii_case("all")) {
        return Vec::new();
    }
    racelab_core::Strategy::names()
        .iter()
        .filter_map(|name| name.parse::<racelab_core::Strategy>().ok())
        .filter(|strategy| !strategy.supported_on(backend))
        .map(|strategy| format!("the {strategy} strategy was not run: it {}", why_not_supported(strategy, backend)))
        .collect()
}
