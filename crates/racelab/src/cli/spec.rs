//! `racelab spec`: PostgreSQL isolation-tester spec files (your own interleavings of sessions) run on
//! a database, printed as the lab's columns, as isolationtester prints them, or as JSON.
//!
//! `racelab spec specs/blocking.spec --database-url postgres://postgres@127.0.0.1:5432/postgres`
//!
//! The format, the runner and the outputs are the core's (`racelab_core::spec`); this module reads
//! the files and flags, checks the database accepts a connection (for the hints a refusal gets),
//! runs each file and prints. Warnings and a run that stopped go to stderr, as isolationtester
//! writes them. ctrl-c stops the run and still rolls back and tears down, saying what it could not.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, ValueEnum};
use racelab_core::spec::{self, isolationtester};
use serde::Serialize;

use super::failure::Failure;
use super::output::{say, write};
use crate::config::{DatabaseArgs, parse_duration};

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Spec files to run, in PostgreSQL's isolation-tester format (src/test/isolation/README).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// What to print: the lab's columns, isolationtester's own output (byte for byte), or JSON.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Same as --format json.
    #[arg(long, hide = true, conflicts_with = "format")]
    pub json: bool,

    /// Run only this permutation (step names separated by spaces, blocker annotations allowed),
    /// instead of the file's own or every interleaving.
    #[arg(long, value_name = "STEPS")]
    pub permutation: Option<String>,

    /// Cancel a step that waits longer than this (as isolationtester does; twice as long ends the
    /// run), e.g. 300s, 2s. The default is PostgreSQL 15 isolationtester's own limit.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "300s")]
    pub step_timeout: Duration,

    /// Width of the text format (default: $COLUMNS, else 80).
    #[arg(long, hide_short_help = true)]
    pub width: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Isolationtester,
    Json,
}

/// One file's run, as `--format json` prints it.
#[derive(Debug, Serialize)]
struct FileRun<'a> {
    file: String,
    database: String,
    spec: &'a spec::Spec,
    #[serde(flatten)]
    outcome: &'a spec::Outcome,
}

/// A spec that can never finish its interleavings in a lifetime is refused before it starts.
const MOST_PERMUTATIONS: u128 = 100_000;

#[tracing::instrument(level = "debug", name = "spec", skip_all, fields(files = args.files.len()))]
pub async fn run(args: SpecArgs) -> Result<(), Failure> {
    if !args.database.init_sql.is_empty() {
        return Err(Failure::usage("--init-sql does not apply to spec: each session is the spec's own"));
    }
    let format = if args.json { Format::Json } else { args.format };
    let nodes = args.database.connect_options_each(1)?;
    if nodes.len() > 1 {
        return Err(Failure::usage("spec runs on one database: give one --database-url"));
    }
    let url = nodes[0].url.clone();
    let mut specs = Vec::with_capacity(args.files.len());
    for file in &args.files {
        let spec = spec::parse_file(file).map_err(Failure::usage_from)?;
        let permutations = match &args.permutation {
            Some(text) => {
                vec![
                    spec::parse_permutation(text, &spec)
                        .map_err(|e| Failure::usage(format!("--permutation for {}: {e}", file.display())).because(e))?,
                ]
            }
            None if spec.permutations.is_empty() && spec::count_permutations(&spec) > MOST_PERMUTATIONS => {
                return Err(Failure::usage(format!(
                    "{}: {} interleavings without permutation lines (at most {MOST_PERMUTATIONS}); \
                     name some with `permutation` lines or --permutation",
                    file.display(),
                    spec::count_permutations(&spec)
                )));
            }
            None => spec.permutations(),
        };
        specs.push((file, spec, permutations));
    }
    // A refused connection is named by the same hints as every other command's.
    let probe = racelab_core::ConnectOptions { migrate: false, ..nodes[0].clone() };
    racelab_core::Database::connect(probe).await?.close().await;
    let width = args.width.or_else(|| std::env::var("COLUMNS").ok()?.parse().ok()).unwrap_or(80);
    // ctrl-c stops the run between two looks at a step: what runs is cancelled, the sessions roll
    // back and the teardowns run before the command ends.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    let listener = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });
    let mut json = Vec::new();
    let mut stopped = None;
    for (i, (file, spec, permutations)) in specs.iter().enumerate() {
        if args.permutation.is_none() {
            for warning in &spec.warnings {
                eprintln!("{warning}");
            }
        }
        let outcome = spec::run_until(&url, spec, permutations, args.step_timeout, &interrupted)
            .await
            .map_err(Failure::runtime_from)?;
        match format {
            Format::Isolationtester => {
                // Said on stderr: stdout stays what isolationtester would print.
                for note in &outcome.translations {
                    eprintln!("{note}");
                }
                write(isolationtester::render(&outcome.run))?
            }
            Format::Text => {
                if i > 0 {
                    say("")?;
                }
                let title = format!("{}: {} on {}", file.display(), plural(permutations.len()), url.redacted());
                write(spec::text::wrap(&title, width))?;
                for note in &outcome.translations {
                    write(spec::text::wrap(note, width))?;
                }
                say(spec::text::render(&outcome.run, width).trim_end())?;
            }
            Format::Json => json.push(
                serde_json::to_value(FileRun {
                    file: file.display().to_string(),
                    database: url.redacted(),
                    spec,
                    outcome: &outcome,
                })
                .map_err(|err| Failure::runtime(format!("cannot write JSON: {err}")).because(err))?,
            ),
        }
        if let Some(stop) = outcome.stopped {
            for what in &stop.not_cleaned {
                eprintln!("{}: not cleaned: {what}", file.display());
            }
            stopped = Some(format!("{}: {}", file.display(), stop.message));
            break;
        }
    }
    listener.abort();
    if format == Format::Json {
        let text = serde_json::to_string_pretty(&json)
            .map_err(|err| Failure::runtime(format!("cannot write JSON: {err}")).because(err))?;
        say(text)?;
    }
    match stopped {
        Some(message) => Err(Failure::runtime(message)),
        None => Ok(()),
    }
}

fn plural(n: usize) -> String {
    format!("{n} permutation{}", if n == 1 { "" } else { "s" })
}
