//! `racelab migrate`: apply the embedded migrations and exit.
//!
//! Connecting applies them (the core's `Database::connect`); this command never touches a row.

use clap::Args;
use racelab_core::Database;

use super::failure::Failure;
use super::output::say;
use crate::config::DatabaseArgs;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// One debug span per run; `skip_all` because the arguments hold the database URL, password included.
#[tracing::instrument(level = "debug", name = "migrate", skip_all)]
pub async fn run(args: MigrateArgs) -> Result<(), Failure> {
    let options = args.database.connect_options(2)?;
    let db = Database::connect(options).await?;
    db.close().await;
    say(format_args!("migrations applied to {}", db.redacted_url()))
}
