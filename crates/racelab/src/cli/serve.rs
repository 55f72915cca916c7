//! `racelab serve`: the HTTP service.

use clap::Args;

use super::Failure;

#[derive(Debug, Args)]
pub struct ServeArgs {}

pub async fn run(_args: ServeArgs) -> Result<(), Failure> {
    Err(Failure::runtime("serve: not built yet"))
}
