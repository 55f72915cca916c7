//! `racelab spec`: PostgreSQL isolation-tester spec files (your own interleavings of sessions) run on
//! a database (PostgreSQL, MariaDB, SQLite, or a Galera cluster's nodes), printed as the lab's
//! columns, as isolationtester prints them, or as JSON; or run on several and compared.
//!
//! `racelab spec specs/blocking.spec --database-url postgres://postgres@127.0.0.1:5432/postgres`
//! `racelab spec specs/hermitage/*.spec --database-url postgres://... --database-url mysql://...`
//!
//! The format, the runner, the comparison and the outputs are the core's (`racelab_core::spec`);
//! this module reads the files and flags, checks each database accepts a connection (for the hints
//! a refusal gets), runs each file and prints. Warnings and a run that stopped go to stderr, as isolationtester
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
use racelab_core::DatabaseUrl;

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

/// One file compared across databases, as `--format json` prints it.
#[derive(Debug, Serialize)]
struct FileComparison<'a> {
    file: String,
    databases: Vec<String>,
    differences: Vec<spec::diff::Difference>,
    runs: Vec<&'a spec::Outcome>,
}

/// A spec that can never finish its interleavings in a lifetime is refused before it starts.
const MOST_PERMUTATIONS: u128 = 100_000;

#[tracing::instrument(level = "debug", name = "spec", skip_all, fields(files = args.files.len()))]
pub async fn run(args: SpecArgs) -> Result<(), Failure> {
    if !args.database.init_sql.is_empty() {
        return Err(Failure::usage("--init-sql does not apply to spec: each session is the spec's own"));
    }
    let format = if args.json { Format::Json } else { args.format };
    // Each --database-url is one database: several, of any backends, are compared. One naming
    // several URLs (commas) is the nodes of one Galera cluster, its sessions spread over them.
    let mut targets = Vec::new();
    let mut nodes = Vec::new();
    for value in &args.database.database_url {
        let one = DatabaseArgs { database_url: vec![value.clone()], ..args.database.clone() };
        let each = one.connect_options_each(1)?;
        if each.len() > 1 && each[0].url.backend() != racelab_core::Backend::MySql {
            return Err(Failure::usage(
                "several URLs in one --database-url are the nodes of one MariaDB Galera cluster (mysql://); \
                 to compare databases, repeat --database-url",
            ));
        }
        targets.push(Target { urls: each.iter().map(|o| o.url.clone()).collect() });
        nodes.extend(each);
    }
    if targets.len() > 1 && format == Format::Isolationtester {
        return Err(Failure::usage(
            "--format isolationtester prints one database's run: give one --database-url (several are compared)",
        ));
    }
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
    for node in &nodes {
        let probe = racelab_core::ConnectOptions { migrate: false, ..node.clone() };
        racelab_core::Database::connect(probe).await?.close().await;
    }
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
    let run = Run { format, width, step_timeout: args.step_timeout, interrupted: &interrupted };
    let result = if targets.len() == 1 {
        run.each_file(&specs, &targets[0], args.permutation.is_none()).await
    } else {
        run.compare(&specs, &targets, args.permutation.is_none()).await
    };
    listener.abort();
    result
}

/// One database: one URL, or the nodes of one Galera cluster.
struct Target {
    urls: Vec<DatabaseUrl>,
}

impl Target {
    fn backend(&self) -> racelab_core::Backend {
        self.urls[0].backend()
    }

    /// Its URL(s) without passwords, comma-separated.
    fn redacted(&self) -> String {
        self.urls.iter().map(DatabaseUrl::redacted).collect::<Vec<_>>().join(",")
    }
}

/// A spec file, parsed, with the permutations to run.
type SpecToRun<'a> = (&'a PathBuf, spec::Spec, Vec<spec::Permutation>);

struct Run<'a> {
    format: Format,
    width: usize,
    step_timeout: Duration,
    interrupted: &'a AtomicBool,
}

impl Run<'_> {
    async fn one(
        &self,
        target: &Target,
        spec: &spec::Spec,
        permutations: &[spec::Permutation],
    ) -> Result<spec::Outcome, Failure> {
        spec::run_on_nodes(&target.urls, spec, permutations, self.step_timeout, self.interrupted)
            .await
            .map_err(Failure::runtime_from)
    }

    /// Every file on one database, printed in the format asked.
    async fn each_file(&self, specs: &[SpecToRun<'_>], url: &Target, warn: bool) -> Result<(), Failure> {
        let mut json = Vec::new();
        let mut stopped = None;
        for (i, (file, spec, permutations)) in specs.iter().enumerate() {
            if warn {
                for warning in &spec.warnings {
                    eprintln!("{warning}");
                }
            }
            let outcome = self.one(url, spec, permutations).await?;
            match self.format {
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
                    write(spec::text::wrap(&title, self.width))?;
                    for note in &outcome.translations {
                        write(spec::text::wrap(note, self.width))?;
                    }
                    say(spec::text::render(&outcome.run, self.width).trim_end())?;
                }
                Format::Json => json.push(to_json(&FileRun {
                    file: file.display().to_string(),
                    database: url.redacted(),
                    spec,
                    outcome: &outcome,
                })?),
            }
            if let Some(stop) = outcome.stopped {
                for what in &stop.not_cleaned {
                    eprintln!("{}: not cleaned: {what}", file.display());
                }
                stopped = Some(format!("{}: {}", file.display(), stop.message));
                break;
            }
        }
        if self.format == Format::Json {
            say(pretty(&json)?)?;
        }
        match stopped {
            Some(message) => Err(Failure::runtime(message)),
            None => Ok(()),
        }
    }

    /// Every file on each database, and only the permutations whose outcome differs printed. A run
    /// that stopped on one database (a setup it refuses) is said on stderr; its permutations not
    /// run differ. The command fails (status 1) when any outcome differs.
    async fn compare(&self, specs: &[SpecToRun<'_>], urls: &[Target], warn: bool) -> Result<(), Failure> {
        let names = names(urls);
        let mut json = Vec::new();
        let mut differing = 0;
        for (i, (file, spec, permutations)) in specs.iter().enumerate() {
            if warn {
                for warning in &spec.warnings {
                    eprintln!("{warning}");
                }
            }
            let mut outcomes = Vec::with_capacity(urls.len());
            for (url, name) in urls.iter().zip(&names) {
                let outcome = self.one(url, spec, permutations).await?;
                if let Some(stop) = &outcome.stopped {
                    eprintln!("{}: on {name}: {}", file.display(), stop.message);
                    for what in &stop.not_cleaned {
                        eprintln!("{}: on {name}: not cleaned: {what}", file.display());
                    }
                }
                let interrupted = outcome.stopped.as_ref().is_some_and(|s| s.message == spec::INTERRUPTED);
                outcomes.push(outcome);
                if interrupted {
                    return Err(Failure::runtime(format!("{}: {}", file.display(), spec::INTERRUPTED)));
                }
            }
            let runs: Vec<&spec::SpecRun> = outcomes.iter().map(|o| &o.run).collect();
            let differences = spec::diff::differences(&runs);
            differing += differences.len();
            match self.format {
                Format::Json => json.push(to_json(&FileComparison {
                    file: file.display().to_string(),
                    databases: urls.iter().map(Target::redacted).collect(),
                    differences,
                    runs: outcomes.iter().collect(),
                })?),
                _ => {
                    if i > 0 {
                        say("")?;
                    }
                    let total = permutations.len();
                    let title = if differences.is_empty() {
                        format!("{}: the same outcome on every database ({})", file.display(), plural(total))
                    } else {
                        format!("{}: {} of {} differ", file.display(), differences.len(), plural(total))
                    };
                    write(spec::text::wrap(&title, self.width))?;
                    for (name, url) in names.iter().zip(urls) {
                        write(spec::text::wrap(&format!("{name} = {}", url.redacted()), self.width))?;
                    }
                    for outcome in &outcomes {
                        for note in &outcome.translations {
                            write(spec::text::wrap(note, self.width))?;
                        }
                    }
                    write(spec::diff::render(&names, total, &differences, self.width))?;
                }
            }
        }
        if self.format == Format::Json {
            say(pretty(&json)?)?;
        }
        if differing > 0 {
            return Err(Failure::runtime(format!(
                "the outcomes differ in {differing} permutation{}",
                if differing == 1 { "" } else { "s" }
            )));
        }
        Ok(())
    }
}

/// What names each database in a comparison: its backend (`galera` for a cluster's nodes),
/// numbered when several share one.
fn names(targets: &[Target]) -> Vec<String> {
    let kinds: Vec<String> =
        targets.iter().map(|t| if t.urls.len() > 1 { "galera".to_owned() } else { t.backend().to_string() }).collect();
    kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            if kinds.iter().filter(|k| *k == kind).count() == 1 {
                kind.clone()
            } else {
                format!("{kind}#{}", kinds[..=i].iter().filter(|k| *k == kind).count())
            }
        })
        .collect()
}

fn to_json(value: &impl Serialize) -> Result<serde_json::Value, Failure> {
    serde_json::to_value(value).map_err(|err| Failure::runtime(format!("cannot write JSON: {err}")).because(err))
}

fn pretty(json: &[serde_json::Value]) -> Result<String, Failure> {
    serde_json::to_string_pretty(json).map_err(|err| Failure::runtime(format!("cannot write JSON: {err}")).because(err))
}

fn plural(n: usize) -> String {
    format!("{n} permutation{}", if n == 1 { "" } else { "s" })
}
