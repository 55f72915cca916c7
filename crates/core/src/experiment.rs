//! N workers x M increments (or N workers for a fixed time) of one strategy on one row, each worker on
//! its own connection, all started together; then the accounting that proves what happened.
//!
//! The proof is the database's own counter: `actual` is read from the row before and after, and every
//! acknowledged increment must be in it (`lost = acknowledged - actual`). Every strategy bumps `version`
//! with each write it commits, so the version tells how many writes landed: if it moved by more (or
//! less) than ours, someone else wrote the row during the run and `lost` is not reported.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::Barrier;
use tracing::Instrument;

use crate::db::{Backend, Counter, Database, Pk, Session};
use crate::error::{DbError, ErrorKind};
use crate::retry::RetryPolicy;
use crate::strategy::{RaceGate, Step, Strategy};

/// When workers stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAfter {
    /// Each worker makes this many increments.
    Increments(u64),
    /// Each worker loops until `warmup + measure` has passed; only the `measure` part is timed.
    Duration { warmup: Duration, measure: Duration },
}

/// Which row an experiment works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A new row, created for this run: nothing else writes it.
    FreshPost,
    /// An existing post, created with `like = 0` if missing (the seed's endpoints use post 1).
    Post(Pk),
}

/// One experiment's settings.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub strategy: Strategy,
    pub workers: usize,
    pub stop: StopAfter,
    pub target: Target,
    pub retry: RetryPolicy,
    /// Overrides the database's lock timeout for this run.
    pub lock_timeout: Option<Duration>,
    /// Make every worker read before any writes, on its first increment (strategies that read
    /// without a lock only): the lost update, deterministically.
    pub force_race: bool,
}

impl Experiment {
    /// The most workers one experiment may use.
    pub const MAX_WORKERS: usize = 256;
    /// The most increments one worker may be asked for.
    pub const MAX_INCREMENTS: u64 = 1_000_000;

    /// `workers` x `increments` of `strategy` on a fresh row, default retry policy.
    pub fn new(strategy: Strategy, workers: usize, increments: u64) -> Self {
        Self {
            strategy,
            workers,
            stop: StopAfter::Increments(increments),
            target: Target::FreshPost,
            retry: RetryPolicy::default(),
            lock_timeout: None,
            force_race: false,
        }
    }

    /// Checks the settings against each other, the backend and the pool.
    pub fn validate(&self, db: &Database) -> Result<(), ExperimentError> {
        if !(1..=Self::MAX_WORKERS).contains(&self.workers) {
            return Err(ExperimentError::Invalid(format!(
                "workers must be between 1 and {}, got {}",
                Self::MAX_WORKERS,
                self.workers
            )));
        }
        if self.workers > db.max_connections() as usize {
            return Err(ExperimentError::Invalid(format!(
                "{} workers need {} connections, but the pool holds {}; raise the pool size",
                self.workers,
                self.workers,
                db.max_connections()
            )));
        }
        match self.stop {
            StopAfter::Increments(n) if !(1..=Self::MAX_INCREMENTS).contains(&n) => {
                return Err(ExperimentError::Invalid(format!(
                    "increments must be between 1 and {}, got {n}",
                    Self::MAX_INCREMENTS
                )));
            }
            StopAfter::Duration { measure, .. } if measure.is_zero() => {
                return Err(ExperimentError::Invalid("duration must be more than 0".into()));
            }
            _ => {}
        }
        if !self.strategy.supported_on(db.backend()) {
            return Err(ExperimentError::Unsupported { strategy: self.strategy, backend: db.backend() });
        }
        self.retry.validate().map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        Ok(())
    }

    /// Runs the experiment and accounts for every increment.
    pub async fn run(&self, db: &Database) -> Result<Outcome, ExperimentError> {
        self.validate(db)?;
        let pk = match self.target {
            Target::FreshPost => db.create_post().await?,
            Target::Post(pk) => {
                db.ensure_post(pk).await?;
                pk
            }
        };
        let mut sessions = db.sessions(self.workers).await?;
        if let Some(timeout) = self.lock_timeout {
            for session in &mut sessions {
                session.set_lock_timeout(timeout).await?;
            }
        }
        let before = sessions[0].read_total(pk).await?;

        let start = Arc::new(Barrier::new(self.workers));
        let race = (self.force_race && self.strategy.reads_unlocked())
            .then(|| Arc::new(RaceGate::new(self.workers, Duration::from_secs(10))));
        let handles: Vec<_> = sessions
            .into_iter()
            .enumerate()
            .map(|(worker, session)| {
                let job = WorkerJob {
                    worker,
                    pk,
                    experiment: self.clone(),
                    db: db.clone(),
                    start: start.clone(),
                    race: race.clone(),
                };
                tokio::spawn(job.run_traced(session))
            })
            .collect();
        let mut totals: Option<WorkerStats> = None;
        for handle in handles {
            let stats = handle.await.map_err(|e| ExperimentError::Worker(e.to_string()))?;
            match totals.as_mut() {
                None => totals = Some(stats),
                Some(totals) => totals.merge(stats),
            }
        }
        let totals = totals.ok_or_else(|| ExperimentError::Invalid("an experiment needs a worker".into()))?;

        let after = db.session().await?.read_total(pk).await?;
        Ok(Outcome::account(self, db.backend(), pk, before, after, totals))
    }
}

/// Why an experiment could not run (as opposed to increments that failed inside it, which the outcome
/// counts).
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("{0}")]
    Invalid(String),
    #[error("the {strategy} strategy is not supported on {backend}")]
    Unsupported { strategy: Strategy, backend: Backend },
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("a worker crashed: {0}")]
    Worker(String),
}

struct WorkerJob {
    worker: usize,
    pk: Pk,
    experiment: Experiment,
    db: Database,
    start: Arc<Barrier>,
    race: Option<Arc<RaceGate>>,
}

impl WorkerJob {
    /// Runs the worker inside a span naming its worker number, strategy and server connection, so
    /// every debug line says who did what (the seed logged per thread and per session). The connection
    /// id costs a round trip, so it is asked for only when debug lines are wanted.
    async fn run_traced(self, mut session: Session) -> WorkerStats {
        let connection =
            if tracing::enabled!(tracing::Level::DEBUG) { session.connection_id().await.ok().flatten() } else { None };
        let span =
            tracing::debug_span!("worker", n = self.worker, strategy = self.experiment.strategy.name(), connection);
        self.run(session).instrument(span).await
    }

    async fn run(self, session: Session) -> WorkerStats {
        let mut stats = WorkerStats::new();
        let mut session = Some(session);
        self.start.wait().await;
        let started = Instant::now();
        let (limit, measure_from, deadline) = match self.experiment.stop {
            StopAfter::Increments(n) => (n, started, None),
            StopAfter::Duration { warmup, measure } => (u64::MAX, started + warmup, Some(started + warmup + measure)),
        };
        stats.measure_from = measure_from;
        let mut done = 0;
        while done < limit && deadline.is_none_or(|d| Instant::now() < d) {
            let race = if done == 0 { self.race.as_deref() } else { None };
            let began = Instant::now();
            let (result, attempts, go_on) = self.one_increment(&mut session, race, &mut stats).await;
            let ended = Instant::now();
            stats.record(began, ended, attempts, result);
            done += 1;
            if let (Err(kind), GoOn::No) = (result, go_on) {
                // The database is out of reach: the increments not made are failures of the same
                // kind, counted, not attempted one acquire timeout at a time.
                if deadline.is_none() {
                    stats.fail_unattempted(kind, limit - done);
                }
                tracing::debug!(worker = self.worker, %kind, "worker stops: no connection to be had");
                break;
            }
        }
        stats.finished = Instant::now();
        stats.started = started;
        stats
    }

    /// One increment, retried under the policy if the strategy retries. A worker whose connection
    /// broke takes a new one for its next increment; if none can be had, the worker stops.
    async fn one_increment(
        &self,
        session: &mut Option<Session>,
        race: Option<&RaceGate>,
        stats: &mut WorkerStats,
    ) -> (Result<(), ErrorKind>, u32, GoOn) {
        if session.is_none() {
            match self.db.session().await {
                Ok(mut fresh) => {
                    if let Some(timeout) = self.experiment.lock_timeout
                        && let Err(err) = fresh.set_lock_timeout(timeout).await
                    {
                        return (Err(err.kind()), 1, GoOn::No);
                    }
                    *session = Some(fresh);
                }
                Err(err) => return (Err(err.kind()), 1, GoOn::No),
            }
        }
        let Some(s) = session.as_mut() else { unreachable!("a session was just set") };
        let strategy = self.experiment.strategy;
        let mut retrier = if strategy.retries() { self.experiment.retry } else { RetryPolicy::no_retry() }.retrier();
        let (result, attempts) = loop {
            let step = Step { pk: self.pk, worker: self.worker, attempt: retrier.attempt(), race };
            let result = strategy.attempt(s, step).await;
            if let Err(err) = &result
                && retrier.retry_after(err.kind()).await
            {
                stats.retried[kind_index(err.kind())] += 1;
                continue;
            }
            break (result, retrier.attempt());
        };
        match result {
            Ok(_) => (Ok(()), attempts, GoOn::Yes),
            Err(err) => {
                tracing::debug!(worker = self.worker, %err, "increment failed");
                if err.kind() == ErrorKind::ConnectionLost
                    && let Some(mut broken) = session.take()
                {
                    broken.close_on_drop();
                }
                (Err(err.kind()), attempts, GoOn::Yes)
            }
        }
    }
}

/// Whether a worker should go on after an increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoOn {
    Yes,
    No,
}

/// One worker's counts, merged into the experiment's at the end (no shared state while running).
struct WorkerStats {
    acknowledged: u64,
    failed: u64,
    errors: [u64; ErrorKind::ALL.len()],
    retried: [u64; ErrorKind::ALL.len()],
    attempts: u64,
    measured_acknowledged: u64,
    latency_us: Histogram<u64>,
    started: Instant,
    measure_from: Instant,
    finished: Instant,
}

impl WorkerStats {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            acknowledged: 0,
            failed: 0,
            errors: [0; ErrorKind::ALL.len()],
            retried: [0; ErrorKind::ALL.len()],
            attempts: 0,
            measured_acknowledged: 0,
            // 1 us to 10 min, 3 significant digits; fixed size, so recording never allocates.
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"),
            started: now,
            measure_from: now,
            finished: now,
        }
    }

    fn record(&mut self, began: Instant, ended: Instant, attempts: u32, result: Result<(), ErrorKind>) {
        self.attempts += u64::from(attempts);
        let measured = began >= self.measure_from;
        match result {
            Ok(()) => {
                self.acknowledged += 1;
                if measured {
                    self.measured_acknowledged += 1;
                }
            }
            Err(kind) => {
                self.failed += 1;
                self.errors[kind_index(kind)] += 1;
            }
        }
        if measured {
            let micros = u64::try_from((ended - began).as_micros()).unwrap_or(u64::MAX).max(1);
            self.latency_us.saturating_record(micros);
        }
    }

    /// Counts `n` increments that were never attempted as failures of `kind`.
    fn fail_unattempted(&mut self, kind: ErrorKind, n: u64) {
        self.failed += n;
        self.errors[kind_index(kind)] += n;
    }

    fn merge(&mut self, other: WorkerStats) {
        self.acknowledged += other.acknowledged;
        self.failed += other.failed;
        for (total, n) in self.errors.iter_mut().zip(other.errors) {
            *total += n;
        }
        for (total, n) in self.retried.iter_mut().zip(other.retried) {
            *total += n;
        }
        self.attempts += other.attempts;
        self.measured_acknowledged += other.measured_acknowledged;
        self.latency_us.add(&other.latency_us).expect("histograms share bounds");
        self.started = self.started.min(other.started);
        self.measure_from = self.measure_from.min(other.measure_from);
        self.finished = self.finished.max(other.finished);
    }
}

/// Latency of whole increments (retries and backoff included), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// What happened, with the proof.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub strategy: Strategy,
    pub database: Backend,
    /// The post the experiment ran on.
    pub post: Pk,
    pub workers: usize,
    /// Increments per worker, when the run was bounded by count.
    pub increments: Option<u64>,
    /// Increments attempted: `workers * increments` for a counted run.
    pub expected: u64,
    /// Increments the strategy reported done.
    pub acknowledged: u64,
    /// Increments that gave up with an error; the kinds are counted in `errors`.
    pub failed: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Failed attempts that were retried, by kind: the conflicts the strategy survived.
    pub retried_errors: BTreeMap<ErrorKind, u64>,
    /// `like` after minus `like` before, read from the database.
    pub actual: i64,
    /// `acknowledged - actual`: acknowledged increments missing from the row. `null` when another
    /// writer touched the row during the run, which makes the figure meaningless.
    pub lost: Option<i64>,
    /// Increments the no-retry versioning demo dropped after detecting a conflict.
    pub dropped: u64,
    /// Writes to the row during the run that were not this experiment's.
    pub foreign_writes: i64,
    /// Attempts in all, first tries included.
    pub attempts: u64,
    /// `attempts - expected`: what safety cost.
    pub retries: u64,
    pub elapsed_ms: f64,
    /// Acknowledged increments per second (in the measured window, for timed runs).
    pub throughput_per_s: f64,
    pub latency_ms: Latency,
    pub like_before: i64,
    pub like_after: i64,
}

impl Outcome {
    fn account(
        experiment: &Experiment,
        backend: Backend,
        pk: Pk,
        before: Counter,
        after: Counter,
        stats: WorkerStats,
    ) -> Self {
        let expected = stats.acknowledged + stats.failed;
        let actual = after.like - before.like;
        let acknowledged = stats.acknowledged as i64;
        // Every write we committed bumped the version once. A lost connection may hide a commit
        // that did happen, so those failures are allowed to explain extra versions.
        let ambiguous = stats.errors[kind_index(ErrorKind::ConnectionLost)];
        let versions = after.version - before.version;
        let foreign_writes = if versions < acknowledged {
            versions - acknowledged
        } else {
            (versions - acknowledged - ambiguous as i64).max(0)
        };
        let lost = (foreign_writes == 0).then_some(acknowledged - actual);
        let errors = count_by_kind(&stats.errors);
        let retried_errors = count_by_kind(&stats.retried);
        let elapsed = stats.finished.saturating_duration_since(stats.started);
        let (throughput, increments) = match experiment.stop {
            StopAfter::Increments(n) => (per_second(stats.acknowledged, elapsed), Some(n)),
            StopAfter::Duration { measure, .. } => (per_second(stats.measured_acknowledged, measure), None),
        };
        let ms = |micros: u64| (micros as f64 / 1000.0 * 1000.0).round() / 1000.0;
        let h = &stats.latency_us;
        Self {
            strategy: experiment.strategy,
            database: backend,
            post: pk,
            workers: experiment.workers,
            increments,
            expected,
            acknowledged: stats.acknowledged,
            failed: stats.failed,
            dropped: if experiment.strategy == Strategy::VersionedNoRetry {
                stats.errors[kind_index(ErrorKind::StaleVersion)]
            } else {
                0
            },
            errors,
            retried_errors,
            actual,
            lost,
            foreign_writes,
            attempts: stats.attempts,
            retries: stats.attempts.saturating_sub(expected),
            elapsed_ms: (elapsed.as_secs_f64() * 1e6).round() / 1e3,
            throughput_per_s: (throughput * 10.0).round() / 10.0,
            latency_ms: Latency {
                p50: ms(h.value_at_quantile(0.50)),
                p95: ms(h.value_at_quantile(0.95)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
            },
            like_before: before.like,
            like_after: after.like,
        }
    }

    /// One line a newcomer understands.
    pub fn verdict(&self) -> String {
        let mut verdict = match self.lost {
            None => format!(
                "another writer changed post {} during the run ({} writes not ours): lost updates cannot be counted",
                self.post, self.foreign_writes
            ),
            Some(lost) if lost > 0 => format!(
                "lost {lost} of {} updates: concurrent read-modify-writes read the same value and overwrote each other",
                self.acknowledged
            ),
            Some(lost) if lost < 0 => {
                format!("{} more increments in the row than acknowledged (a commit whose answer was lost)", -lost)
            }
            Some(_) if self.dropped > 0 => format!(
                "dropped {} of {} increments: the version check caught each conflict, but nothing retried it; \
                 no acknowledged update lost",
                self.dropped, self.expected
            ),
            Some(_) if self.retries > 0 => {
                format!("no update lost, {} {}", self.retries, plural(self.retries, "retry", "retries"))
            }
            Some(_) => "no update lost".to_owned(),
        };
        if self.failed > self.dropped {
            let kinds: Vec<String> = self.errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            verdict.push_str(&format!("; {} increments gave up ({})", self.failed, kinds.join(", ")));
        }
        verdict
    }
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn kind_index(kind: ErrorKind) -> usize {
    ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(ErrorKind::ALL.len() - 1)
}

fn count_by_kind(counts: &[u64; ErrorKind::ALL.len()]) -> BTreeMap<ErrorKind, u64> {
    ErrorKind::ALL.into_iter().zip(*counts).filter(|(_, n)| *n > 0).collect()
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() { 0.0 } else { count as f64 / elapsed.as_secs_f64() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(
        strategy: Strategy,
        acknowledged: u64,
        failed: &[(ErrorKind, u64)],
        before: (i64, i64),
        after: (i64, i64),
    ) -> Outcome {
        let mut stats = WorkerStats::new();
        stats.acknowledged = acknowledged;
        for (kind, n) in failed {
            stats.failed += n;
            stats.errors[kind_index(*kind)] += n;
        }
        let experiment = Experiment::new(strategy, 2, (acknowledged + stats.failed) / 2);
        let counter = |(like, version)| Counter { like, version };
        Outcome::account(&experiment, Backend::Postgres, 1, counter(before), counter(after), stats)
    }

    #[test]
    fn lost_updates_are_acknowledged_minus_actual() {
        // Naive: 50 writes landed (50 versions), but the counter moved by 27.
        let o = outcome(Strategy::Naive, 50, &[], (0, 0), (27, 50));
        assert_eq!((o.actual, o.lost, o.foreign_writes), (27, Some(23), 0));
        assert!(o.verdict().starts_with("lost 23 of 50 updates"), "{}", o.verdict());
    }

    #[test]
    fn writes_that_are_not_ours_void_the_lost_figure() {
        let o = outcome(Strategy::Atomic, 400, &[], (0, 0), (405, 405));
        assert_eq!((o.foreign_writes, o.lost), (5, None));
        assert!(o.verdict().contains("another writer changed post 1"), "{}", o.verdict());
        // A reset during the run moves the version backwards: also not ours.
        let o = outcome(Strategy::Atomic, 400, &[], (0, 7), (100, 100));
        assert!(o.foreign_writes < 0 && o.lost.is_none(), "{o:?}");
    }

    #[test]
    fn a_lost_connection_may_explain_one_extra_write() {
        let o = outcome(Strategy::Atomic, 9, &[(ErrorKind::ConnectionLost, 1)], (0, 0), (10, 10));
        assert_eq!((o.foreign_writes, o.lost), (0, Some(-1)));
        assert_eq!(o.expected, 10);
    }

    #[test]
    fn only_stale_versions_count_as_dropped() {
        let failed = [(ErrorKind::StaleVersion, 2), (ErrorKind::ConnectionLost, 1)];
        let o = outcome(Strategy::VersionedNoRetry, 7, &failed, (0, 0), (7, 7));
        assert_eq!((o.dropped, o.failed), (2, 3));
        assert!(o.verdict().contains("3 increments gave up (stale_version: 2, connection_lost: 1)"), "{}", o.verdict());
    }

    #[test]
    fn dropped_increments_are_the_no_retry_failures() {
        let o = outcome(Strategy::VersionedNoRetry, 7, &[(ErrorKind::StaleVersion, 3)], (0, 0), (7, 7));
        assert_eq!((o.dropped, o.lost, o.failed), (3, Some(0), 3));
        assert!(o.verdict().starts_with("dropped 3 of 10 increments"), "{}", o.verdict());
    }
}
