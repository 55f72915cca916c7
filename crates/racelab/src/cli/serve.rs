//! `racelab serve`: the HTTP service (see [`crate::http`]).
//!
//! ```sh
//! racelab serve --bind 127.0.0.1:8000 --database-url postgres://postgres@127.0.0.1/postgres
//! curl -s http://127.0.0.1:8000/test-db/2th-plock
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::Failure;
use crate::config::{DatabaseArgs, RetryArgs, ShardArgs, parse_duration};
use crate::http::lab::{DEFAULT_POOL_SIZE, Limits, MAX_INCREMENTS, MAX_WORKERS};
use crate::http::{Application, HttpConfig};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the log says which).
    #[arg(long, env = "RACELAB_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// A request taking longer is answered 503 (its experiment still finishes, holding its post).
    #[arg(long, env = "RACELAB_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// After ctrl-c or SIGTERM, how long in-flight requests may take to finish.
    #[arg(long, env = "RACELAB_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// How long a request waits for a database connection before answering 503.
    #[arg(long, env = "RACELAB_ACQUIRE_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub acquire_timeout: Duration,

    /// The most workers one request may ask for (the published OpenAPI states it).
    #[arg(long, env = "RACELAB_MAX_WORKERS", default_value_t = MAX_WORKERS,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_WORKERS)))]
    pub max_workers: u32,

    /// The most increments per worker one request may ask for (the published OpenAPI states it).
    #[arg(long, env = "RACELAB_MAX_INCREMENTS", default_value_t = MAX_INCREMENTS,
        value_parser = clap::value_parser!(u64).range(1..=MAX_INCREMENTS))]
    pub max_increments: u64,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub retry: RetryArgs,

    #[command(flatten)]
    pub shard: ShardArgs,
}

impl ServeArgs {
    /// The service configuration these flags describe.
    pub fn config(&self) -> Result<HttpConfig, Failure> {
        // The pool holds the largest experiment a request may ask for (32 workers), plus headroom.
        let mut database = self.database.connect_options(DEFAULT_POOL_SIZE)?;
        database.acquire_timeout = self.acquire_timeout;
        let retry = self.retry.policy().map_err(|e| Failure::usage(e.to_string()))?;
        if self.request_timeout.is_zero() {
            return Err(Failure::usage("--request-timeout must be more than 0"));
        }
        Ok(HttpConfig {
            bind: self.bind,
            database,
            retry,
            request_timeout: self.request_timeout,
            limits: Limits { max_workers: self.max_workers, max_increments: self.max_increments },
            shutdown_grace: self.shutdown_grace,
            slots: self.shard.slots,
        })
    }
}

pub async fn run(args: ServeArgs) -> Result<(), Failure> {
    let config = args.config()?;
    tracing::info!(database = %config.database.url.redacted(), "starting racelab serve");
    let app = Application::build(config).await.map_err(|e| Failure::runtime(e.to_string()))?;
    app.run_until_stopped().await.map_err(|e| Failure::runtime(format!("the server failed: {e}")))
}
