//! `racelab bench`: throughput and latency of strategies as workers grow.

use clap::Args;

use super::Failure;

#[derive(Debug, Args)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> Result<(), Failure> {
    Err(Failure::runtime("bench: not built yet"))
}
