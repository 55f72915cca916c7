//! `racelab serve`: the HTTP service (see [`crate::http`]).
//!
//! Turns the flags into an [`HttpConfig`] and runs the service until ctrl-c or SIGTERM; holds no
//! HTTP logic of its own, and never logs the database URL but in its redacted form.
//!
//! ```sh
//! racelab serve --bind 127.0.0.1:8000 --database-url postgres://postgres@127.0.0.1/postgres
//! curl -s http://127.0.0.1:8000/test-db/2th-plock
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::failure::Failure;
use crate::config::{DatabaseArgs, Dotenv, RetryArgs, ShardArgs, parse_duration, sqlite_file};
use crate::http::experiments::RunLimits;
use crate::http::lab::{DEFAULT_POOL_SIZE, Limits, MAX_INCREMENTS, MAX_WORKERS};
use racelab_core::Strategy;
use racelab_core::likes::Liker;

use crate::http::{Application, ConnectionSettings, HttpConfig, LikeSettings, StartupError};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the log says which).
    #[arg(long, env = "RACELAB_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// A request taking longer is answered 503 with what its experiment had done.
    ///
    /// The experiment stops after the increments in flight, holding its post until then.
    #[arg(long, env = "RACELAB_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// After ctrl-c or SIGTERM, how long in-flight requests may take to finish.
    #[arg(long, env = "RACELAB_SHUTDOWN_GRACE", hide_short_help = true, default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// A client must send a whole request head (request line and headers) within this, from its
    /// connection's accept or from the first bytes of a request on a kept-alive connection; else the
    /// connection is closed.
    #[arg(long, env = "RACELAB_HEADER_READ_TIMEOUT", hide_short_help = true, default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// A kept-alive connection without a request for this long is closed (keep it above the load
    /// balancer's idle timeout, 60 s on AWS ALB), and so is one whose response the client reads
    /// nothing of for this long.
    #[arg(long, env = "RACELAB_KEEP_ALIVE_TIMEOUT", hide_short_help = true, default_value = "75s", value_parser = parse_duration)]
    pub keep_alive_timeout: Duration,

    /// Client connections at once, lowered to fit the open-files limit (`ulimit -n`). At the cap a
    /// new request takes the place of an idle connection (the oldest with no whole request head,
    /// else the one idle the longest); if all are busy, it gets 503.
    #[arg(long, env = "RACELAB_MAX_CONNECTIONS", hide_short_help = true, default_value_t = ConnectionSettings::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// How long a request waits for a database connection before answering 503.
    #[arg(long, env = "RACELAB_ACQUIRE_TIMEOUT", hide_short_help = true, default_value = "3s", value_parser = parse_duration)]
    pub acquire_timeout: Duration,

    /// The most workers one request may ask for (the published OpenAPI states it).
    #[arg(long, env = "RACELAB_MAX_WORKERS", default_value_t = MAX_WORKERS,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_WORKERS)))]
    pub max_workers: u32,

    /// The most increments per worker one request may ask for (the published OpenAPI states it).
    #[arg(long, env = "RACELAB_MAX_INCREMENTS", default_value_t = MAX_INCREMENTS,
        value_parser = clap::value_parser!(u64).range(1..=MAX_INCREMENTS))]
    pub max_increments: u64,

    /// The strategy `POST /posts/{pk}/likes` makes each like with.
    ///
    /// Any strategy that loses nothing: atomic, pessimistic[-nowait|-skip-locked], optimistic,
    /// versioned, serializable, advisory, sharded.
    #[arg(long, env = "RACELAB_LIKE_STRATEGY", default_value = "atomic")]
    pub like_strategy: Strategy,

    /// Make concurrent likes on one post together, in one transaction.
    ///
    /// One transaction adds their number in one write and stores all their idempotency keys, and each
    /// request is answered after that commit.
    #[arg(long, env = "RACELAB_COMBINE_LIKES")]
    pub combine_likes: bool,

    /// Refuse a like without `Idempotency-Key` (400) instead of making it.
    #[arg(long, env = "RACELAB_REQUIRE_IDEMPOTENCY_KEY", hide_short_help = true)]
    pub require_idempotency_key: bool,

    /// How long an `Idempotency-Key` is kept after its first use (then purged, within a minute): a
    /// retry later than this counts as a new like.
    #[arg(long, env = "RACELAB_IDEMPOTENCY_KEY_TTL", hide_short_help = true, default_value = "24h", value_parser = parse_duration)]
    pub idempotency_key_ttl: Duration,

    /// Runs of `/experiments` under way at once; one more is refused (429).
    #[arg(long, env = "RACELAB_MAX_RUNS", hide_short_help = true, default_value_t = RunLimits::DEFAULT_MAX_RUNS,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub max_runs: usize,

    /// How long a finished run of `/experiments` is kept (then GET answers 404).
    #[arg(long, env = "RACELAB_RUN_RETENTION", hide_short_help = true, default_value = "1h", value_parser = parse_duration)]
    pub run_retention: Duration,

    /// The most finished runs of `/experiments` kept; the oldest are forgotten first.
    #[arg(long, env = "RACELAB_MAX_KEPT_RUNS", hide_short_help = true, default_value_t = RunLimits::DEFAULT_MAX_KEPT,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub max_kept_runs: usize,

    /// Refuse runs of a spec (`kind: "spec"`, 403): a spec is SQL of the client's own, run on this
    /// server's database with its credentials. Allowed by default (the server listens on loopback).
    #[arg(long, env = "RACELAB_NO_SPEC_RUNS", hide_short_help = true)]
    pub no_spec_runs: bool,

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
        let retry = self.retry.policy().map_err(Failure::usage_from)?;
        // A duration is parsed by parse_duration, which clap's ranges (numbers only) cannot bound.
        for (flag, value) in [
            ("--request-timeout", self.request_timeout),
            ("--header-read-timeout", self.header_read_timeout),
            ("--keep-alive-timeout", self.keep_alive_timeout),
        ] {
            if value.is_zero() {
                return Err(Failure::usage(format!("{flag} must be more than 0")));
            }
        }
        // Not a clap range: with no upper bound (the cap is lowered to the open-files limit), clap would
        // say "0 is not in 1..18446744073709551615".
        if self.max_connections == 0 {
            return Err(Failure::usage("--max-connections must be at least 1"));
        }
        Ok(HttpConfig {
            bind: self.bind,
            database,
            retry,
            request_timeout: self.request_timeout,
            limits: Limits { max_workers: self.max_workers, max_increments: self.max_increments },
            shutdown_grace: self.shutdown_grace,
            slots: self.shard.slots,
            connections: ConnectionSettings {
                header_read_timeout: self.header_read_timeout,
                keep_alive_timeout: self.keep_alive_timeout,
                max_connections: self.max_connections,
            },
            likes: LikeSettings {
                liker: Liker::new(self.like_strategy.with_slots(self.shard.slots), retry)
                    .map_err(|e| Failure::usage(format!("--like-strategy: {e}")).because(e))?,
                combine: self.combine_likes,
                require_key: self.require_idempotency_key,
                key_ttl: self.idempotency_key_ttl,
            },
            runs: RunLimits {
                max_runs: self.max_runs,
                retention: self.run_retention,
                max_kept: self.max_kept_runs,
                spec_runs: !self.no_spec_runs,
            },
        })
    }
}

/// One debug span per run; `skip_all` because the arguments hold the database URL, password included.
#[tracing::instrument(level = "debug", name = "serve", skip_all, fields(bind = %args.bind))]
pub async fn run(args: ServeArgs, dotenv: Option<Dotenv>) -> Result<(), Failure> {
    let config = args.config()?;
    if config.runs.spec_runs && !config.bind.ip().is_loopback() {
        tracing::warn!(bind = %config.bind, "spec runs are on and this server listens beyond loopback: any client \
            that reaches it may run SQL of its own on the database (--no-spec-runs turns them off)");
    }
    let url = config.database.url.redacted();
    match sqlite_file(&url) {
        Some(file) => tracing::info!(database = %url, %file, "starting racelab serve on the SQLite file {file}"),
        None => tracing::info!(database = %url, "starting racelab serve"),
    }
    if let Some(settings) = dotenv.as_ref().and_then(Dotenv::summary) {
        tracing::info!("{settings}");
    }
    let app = Application::build(config).await.map_err(startup_failure)?;
    app.run_until_stopped().await.map_err(|e| Failure::runtime(format!("the server failed: {e}")).because(e))
}

/// Why the service could not start, with the way out of an address in use.
fn startup_failure(err: StartupError) -> Failure {
    match &err {
        StartupError::Bind { addr, source } if source.kind() == std::io::ErrorKind::AddrInUse => {
            Failure::runtime(format!(
                "{err}\n  hint: another process listens on port {port}: stop it, or choose another address with \
             --bind or RACELAB_BIND (port 0 picks a free one, and the log says which)",
                port = addr.port()
            ))
            .because(err)
        }
        _ => Failure::runtime_from(err),
    }
}
