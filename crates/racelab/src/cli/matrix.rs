//! `racelab matrix`: every workload's strategies at every isolation level of each database given, the
//! race forced, as one Markdown document (the README's `docs/workloads.md` is its output).
//!
//! ```sh
//! racelab matrix --postgres postgres://postgres@127.0.0.1:5432/postgres \
//!     --mariadb mysql://root@127.0.0.1:3306/test --sqlite sqlite:///tmp/matrix.db \
//!     --galera mysql://root@127.0.0.1:4306/test,mysql://root@127.0.0.1:4307/test,mysql://root@127.0.0.1:4308/test \
//!     --out docs/workloads.md
//! ```
//!
//! Each cell is one small run (`--workers` x `--operations`, `--force-race`) whose invariant is
//! proven from the database's rows, the counter's too (its strategies through the workloads' runner,
//! as `lab --workload counter --isolation` runs them); the document is drawn by [`crate::report::workload_matrix`]. A
//! run that cannot start is a cell that says so, never a missing one. MariaDB is run twice, with
//! `innodb_snapshot_isolation` off and on (each connection sets it).

use std::path::PathBuf;

use clap::Args;
use racelab_core::{ConnectOptions, Database, DatabaseUrl, Isolation, Workload, WorkloadExperiment};

use super::failure::Failure;
use super::output::say;
use crate::report::workload_matrix::{Cell, Column, Matrix, Target, render};

#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// A PostgreSQL database: its read committed, repeatable read and serializable columns.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// A MariaDB/MySQL database: every level, with innodb_snapshot_isolation off, then on.
    #[arg(long, value_name = "URL")]
    pub mariadb: Option<String>,
    /// A SQLite database (every transaction there is serializable: one column).
    #[arg(long, value_name = "URL")]
    pub sqlite: Option<String>,
    /// The nodes of a MariaDB Galera cluster, comma-separated: the workers are spread over them.
    #[arg(long, value_name = "URL,URL,...", value_delimiter = ',')]
    pub galera: Vec<String>,
    /// Workers of each run.
    #[arg(long, short = 'w', default_value_t = 4)]
    pub workers: usize,
    /// Operations of each worker.
    #[arg(long, short = 'n', default_value_t = 4)]
    pub operations: u64,
    /// Write the document to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// The levels a column group runs, weakest first (`None`: the database's only kind of transaction).
fn levels(target: Target) -> Vec<Option<Isolation>> {
    use Isolation::*;
    match target {
        Target::Postgres => vec![Some(ReadCommitted), Some(RepeatableRead), Some(Serializable)],
        Target::MariaDb => vec![Some(ReadUncommitted), Some(ReadCommitted), Some(RepeatableRead), Some(Serializable)],
        Target::MariaDbSnapshot => vec![Some(RepeatableRead), Some(Serializable)],
        Target::Sqlite => vec![None],
        // Certification is across nodes; SERIALIZABLE is not offered across a multi-primary cluster.
        Target::Galera => vec![Some(ReadCommitted), Some(RepeatableRead)],
    }
}

/// The connect options of one column group, each node's pool wide enough for the run.
fn options(target: Target, urls: &[String], workers: usize) -> Result<Vec<ConnectOptions>, Failure> {
    let per_node = workers.div_ceil(urls.len().max(1)) as u32;
    urls.iter()
        .map(|url| {
            let mut options = ConnectOptions::new(DatabaseUrl::parse(url).map_err(Failure::usage_from)?);
            options.max_connections = per_node.max(1) + 1;
            options.init_statements = match target {
                Target::MariaDb => vec!["SET SESSION innodb_snapshot_isolation = OFF".to_owned()],
                Target::MariaDbSnapshot => vec!["SET SESSION innodb_snapshot_isolation = ON".to_owned()],
                _ => Vec::new(),
            };
            Ok(options)
        })
        .collect()
}

pub async fn run(args: MatrixArgs) -> Result<(), Failure> {
    let mut groups: Vec<(Target, Vec<String>)> = Vec::new();
    groups.extend(args.postgres.iter().map(|url| (Target::Postgres, vec![url.clone()])));
    if let Some(url) = &args.mariadb {
        groups.push((Target::MariaDb, vec![url.clone()]));
        groups.push((Target::MariaDbSnapshot, vec![url.clone()]));
    }
    groups.extend(args.sqlite.iter().map(|url| (Target::Sqlite, vec![url.clone()])));
    if !args.galera.is_empty() {
        groups.push((Target::Galera, args.galera.clone()));
    }
    if groups.is_empty() {
        return Err(Failure::usage("give at least one of --postgres, --mariadb, --sqlite, --galera"));
    }
    let mut matrix = Matrix {
        workers: args.workers,
        operations: args.operations,
        columns: Vec::new(),
        cells: Vec::new(),
        versions: Vec::new(),
    };
    for (target, urls) in groups {
        let mut nodes = Vec::new();
        for options in options(target, &urls, args.workers)? {
            nodes.push(Database::connect(options).await?);
        }
        let version = nodes[0].server_version().await.map_err(Failure::runtime_from)?;
        matrix.versions.push((target, version));
        for level in levels(target) {
            let column = matrix.columns.len();
            matrix.columns.push(Column { target, level });
            // The counter first, through the same runner as the others (its strategies at the level).
            for workload in Workload::ALL {
                for strategy in workload.strategies() {
                    let experiment = WorkloadExperiment {
                        isolation: level,
                        force_race: true,
                        ..WorkloadExperiment::new(workload, strategy, args.workers, args.operations)
                    };
                    let cell = match experiment.run_on(&nodes, &Default::default()).await {
                        Ok(outcome) => Cell::Ran(Box::new(outcome)),
                        Err(err) => Cell::NotRun(err.to_string()),
                    };
                    matrix.cells.push((column, workload, strategy, cell));
                }
            }
        }
        for node in nodes {
            node.close().await;
        }
    }
    let document = render(&matrix);
    match args.out {
        Some(path) => std::fs::write(&path, document)
            .map_err(|err| Failure::runtime(format!("cannot write {}: {err}", path.display())).because(err)),
        None => say(document),
    }
}
