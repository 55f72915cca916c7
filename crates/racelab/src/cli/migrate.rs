//! `racelab migrate`: apply the embedded migrations and exit.

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

pub async fn run(args: MigrateArgs) -> Result<(), Failure> {
    let options = args.database.connect_options(2)?;
    let db = Database::connect(options).await?;
    db.close().await;
    say(format_args!("migrations applied to {}", db.redacted_url()))
}
