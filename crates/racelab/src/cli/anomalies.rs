//! `racelab anomalies`: Hermitage's isolation tests on every isolation level of one database, as a
//! matrix case x level next to Hermitage's published results, or one JSON document with every step.
//!
//! `racelab anomalies --database-url postgres://postgres@127.0.0.1:5432/postgres`
//!
//! The suite itself is the core's (`racelab_core::anomalies`) and the matrix is drawn by
//! [`crate::report::anomalies`]; this module checks the flags, proves each node accepts a connection,
//! runs the suite and prints. It never runs the user's `--init-sql`: each level sets its own session.

use clap::Args;
use racelab_core::anomalies;

use super::failure::Failure;
use super::output::say;
use crate::config::DatabaseArgs;
use crate::report::anomalies::render;

#[derive(Debug, Args)]
pub struct AnomaliesArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Print one JSON document (every cell, with each step's SQL, answer, rows and error) instead
    /// of the table.
    #[arg(long)]
    pub json: bool,
}

/// One debug span per run; `skip_all` because the arguments hold the database URL, password included.
#[tracing::instrument(level = "debug", name = "anomalies", skip_all, fields(json = args.json))]
pub async fn run(args: AnomaliesArgs) -> Result<(), Failure> {
    if !args.database.init_sql.is_empty() {
        // Each level sets its own session variables; a statement of the user's could change them.
        return Err(Failure::usage("--init-sql does not apply to anomalies: each level sets its own session"));
    }
    let nodes = args.database.connect_options_each(1)?;
    if nodes.len() > 1 && nodes[0].url.backend() != racelab_core::Backend::MySql {
        return Err(Failure::usage("several --database-url are the nodes of one MariaDB Galera cluster"));
    }
    // The suite opens its own raw connections and would report a refusal in the driver's words ("error
    // returned from database ... at line 948"), as if nothing had answered. One connection per node
    // first, as `lab` makes it, names a denied access, a missing database or no connection left, with
    // the hint that applies.
    for node in &nodes {
        let probe = racelab_core::ConnectOptions { migrate: false, ..node.clone() };
        racelab_core::Database::connect(probe).await?.close().await;
    }
    let urls: Vec<_> = nodes.iter().map(|o| o.url.clone()).collect();
    let levels = racelab_core::anomalies::Level::of(urls[0].backend());
    let matrix = anomalies::run_cases(&urls, nodes[0].lock_timeout, levels, &anomalies::Case::ALL)
        .await
        .map_err(Failure::runtime_from)?;
    if args.json {
        let json = serde_json::to_string_pretty(&matrix)
            .map_err(|err| Failure::runtime(format!("cannot write JSON: {err}")).because(err))?;
        return say(json);
    }
    say(render(&matrix))
}
