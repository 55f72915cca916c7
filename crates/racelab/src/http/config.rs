//! What the service is started with: the whole [`HttpConfig`], and the settings of its parts that are
//! not the handlers' own to define (likes, runs). Plain data the CLI fills in; this module must never
//! read the environment or the command line itself, nor depend on the handlers that use it.

use std::net::SocketAddr;
use std::time::Duration;

use racelab_core::likes::Liker;
use racelab_core::{ConnectOptions, RetryPolicy, Strategy};

use super::connections::ConnectionSettings;
use super::limits::Limits;

/// Everything the service needs to start.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    pub database: ConnectOptions,
    pub retry: RetryPolicy,
    /// A request taking longer is answered 503 with what its experiment had done; the experiment stops
    /// after the increments in flight, holding its post until then, so nothing overlaps it.
    pub request_timeout: Duration,
    /// The largest experiment one request may ask for (`--max-workers`, `--max-increments`).
    pub limits: Limits,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Slot rows of the `sharded` strategy's counter (`/test-db/2th-sharded`).
    pub slots: u16,
    /// Idle timeouts and the connection cap.
    pub connections: ConnectionSettings,
    /// How likes are made: the strategy, combining, and whether a key is required and how long kept.
    pub likes: LikeSettings,
    /// Runs of `/experiments` at once, and how long and how many finished ones are kept.
    pub runs: RunLimits,
}

/// How likes are made (`serve --like-strategy`, `--combine-likes`, `--require-idempotency-key`,
/// `--idempotency-key-ttl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LikeSettings {
    /// The strategy and retry policy each like (or combined batch) is made with.
    pub liker: Liker,
    /// Concurrent likes on one post are made together, in one transaction.
    pub combine: bool,
    /// A like without `Idempotency-Key` is refused (400) instead of made.
    pub require_key: bool,
    /// A key is kept at least this long after its first use, then purged (within [`PURGE_EVERY`](super::likes::PURGE_EVERY)).
    pub key_ttl: Duration,
}

impl LikeSettings {
    pub const DEFAULT_KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
}

impl Default for LikeSettings {
    /// Atomic likes, one transaction each, keys optional and kept a day.
    fn default() -> Self {
        let liker = Liker::new(Strategy::Atomic, RetryPolicy::default()).expect("atomic is safe");
        Self { liker, combine: false, require_key: false, key_ttl: Self::DEFAULT_KEY_TTL }
    }
}

/// How many runs, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Runs under way (queued or running) at once.
    pub max_runs: usize,
    /// How long a finished run is kept.
    pub retention: Duration,
    /// The most finished runs kept; the oldest go first.
    pub max_kept: usize,
    /// Whether a run may be a spec (`kind: "spec"`): SQL of the client's own, run on the server's
    /// database with the server's credentials. `serve --no-spec-runs` turns it off (403).
    pub spec_runs: bool,
}

impl RunLimits {
    pub const DEFAULT_MAX_RUNS: usize = 4;
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(3600);
    pub const DEFAULT_MAX_KEPT: usize = 100;
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            max_runs: Self::DEFAULT_MAX_RUNS,
            retention: Self::DEFAULT_RETENTION,
            max_kept: Self::DEFAULT_MAX_KEPT,
            spec_runs: true,
        }
    }
}
