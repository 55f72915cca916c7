//! N workers x M increments (or N workers for a fixed time) of one strategy on one row, each worker on
//! its own connection, all started together; then the accounting that proves what happened.
//!
//! The proof is the database's own counter: `actual` is read from the row before and after, and every
//! acknowledged increment must be in it. Every attempted increment ends as exactly one of:
//! acknowledged; failed (known not applied: the server refused or rolled back); or **in doubt** (the
//! answer to the statement that would have committed it was lost). For every safe strategy
//! `acknowledged <= actual <= acknowledged + in_doubt`.
//!
//! Every strategy bumps `version` with each write it commits, so the version tells how many writes
//! landed: how many of the in-doubt increments committed, or, if it moved by more (or less) than ours
//! can explain, that someone else wrote the row during the run and `lost` is not reported.
//!
//! What was counted is never thrown away: when the counter cannot be read after the run (the database
//! went away), the outcome still comes, with `actual: null`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::Barrier;
use tracing::Instrument;

#[cfg(test)]
use crate::db::LockMode;
use crate::db::{Backend, Counter, Database, Pk, Session};
use crate::error::{DbError, ErrorKind};
use crate::retry::RetryPolicy;
use crate::strategy::{RaceGate, Step, Strategy};
use crate::trace::{Seen, Trace, TraceKind, TraceLimit, Tracer};

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
    /// How many times one increment refused by a lock (`NOWAIT`, `SKIP LOCKED`, a lock timeout) is
    /// tried again. 0 by default: a lock mode that fails fast fails on the first refusal, and one
    /// wait never outlasts the lock timeout. Other conflicts follow the retry policy.
    pub lock_retries: u32,
    /// How long to keep trying to read the counter after the run (the database may be coming back)
    /// before reporting `actual: null`.
    pub settle_timeout: Duration,
    /// Record a [`Trace`] of every worker's reads, writes, commits and conflicts into
    /// [`Outcome::trace`], up to this limit. Off by default: meant for small runs a person reads.
    pub trace: Option<TraceLimit>,
}

impl Experiment {
    /// The most workers one experiment may use.
    pub const MAX_WORKERS: usize = 256;
    /// The most increments one worker may be asked for.
    pub const MAX_INCREMENTS: u64 = 1_000_000;
    /// How long the counter is tried after the run by default.
    pub const DEFAULT_SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

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
            lock_retries: 0,
            settle_timeout: Self::DEFAULT_SETTLE_TIMEOUT,
            trace: None,
        }
    }

    /// Checks the settings against each other, the backend and the pool.
    pub fn validate(&self, db: &Database) -> Result<(), ExperimentError> {
        self.validate_on(std::slice::from_ref(db))
    }

    /// Checks the settings against each other and against every node the workers are spread over.
    pub fn validate_on(&self, nodes: &[Database]) -> Result<(), ExperimentError> {
        let Some(first) = nodes.first() else {
            return Err(ExperimentError::Invalid("an experiment needs a database".into()));
        };
        if !(1..=Self::MAX_WORKERS).contains(&self.workers) {
            return Err(ExperimentError::Invalid(format!(
                "workers must be between 1 and {}, got {}",
                Self::MAX_WORKERS,
                self.workers
            )));
        }
        if let Some(other) = nodes.iter().find(|n| n.backend() != first.backend()) {
            return Err(ExperimentError::Invalid(format!(
                "every node of one experiment must be the same kind of database: {} and {}",
                first.backend(),
                other.backend()
            )));
        }
        for (node, db) in nodes.iter().enumerate() {
            let needed = workers_on_node(self.workers, nodes.len(), node);
            if needed > db.max_connections() as usize {
                return Err(ExperimentError::Invalid(format!(
                    "{needed} workers need {needed} connections, but the pool holds {}; raise the pool size",
                    db.max_connections()
                )));
            }
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
        if !self.strategy.supported_on(first.backend()) {
            return Err(ExperimentError::Unsupported { strategy: self.strategy, backend: first.backend() });
        }
        self.retry.validate().map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        Ok(())
    }

    /// Runs the experiment and accounts for every increment.
    pub async fn run(&self, db: &Database) -> Result<Outcome, ExperimentError> {
        self.run_on(std::slice::from_ref(db), &Arc::default()).await
    }

    /// Runs the experiment with its workers spread round-robin over `nodes` (the nodes of one
    /// cluster, all on the same row), counting into `progress` as it goes, and accounts for every
    /// increment across the nodes. The counter is read, before and after, on a node that has applied
    /// every write certified before the read.
    ///
    /// An error means nothing was done (the settings were refused, or the row or the connections
    /// could not be had); once workers have started, the outcome always comes.
    pub async fn run_on(&self, nodes: &[Database], progress: &Arc<Progress>) -> Result<Outcome, ExperimentError> {
        self.validate_on(nodes)?;
        let setup = &nodes[0];
        let pk = match self.target {
            Target::FreshPost => setup.create_post().await?,
            Target::Post(pk) => {
                setup.ensure_post(pk).await?;
                pk
            }
        };
        let mut sessions = Vec::with_capacity(self.workers);
        for (node, db) in nodes.iter().enumerate() {
            let mut on_node = db.sessions(workers_on_node(self.workers, nodes.len(), node)).await?;
            if let Some(timeout) = self.lock_timeout {
                for session in &mut on_node {
                    session.set_lock_timeout(timeout).await?;
                }
            }
            sessions.push(on_node);
        }
        // On a worker's session: the pool may hold no more connections than the workers need.
        let before = sessions[0][0].read_settled(pk).await?;
        // Every other node must have applied the post's creation before its workers read it: on
        // Galera a fresh row reaches the other nodes a moment after its commit (else `not_found`).
        for on_node in sessions.iter_mut().skip(1).filter_map(|s| s.first_mut()) {
            on_node.read_settled(pk).await?;
        }
        let mut sessions: Vec<_> = sessions.into_iter().map(Vec::into_iter).collect();

        let start = Arc::new(Barrier::new(self.workers));
        let race = (self.force_race && self.strategy.reads_unlocked())
            .then(|| Arc::new(RaceGate::new(self.workers, Duration::from_secs(10))));
        // Each commit of a single-row strategy writes the row's new value, so a value committed twice
        // is an overwritten increment; the sharded counter's slots repeat each other's values.
        let marks_overwrites = !matches!(self.strategy, Strategy::Sharded { .. });
        let tracer = self.trace.map(|limit| Arc::new(Tracer::new(limit, marks_overwrites)));
        let handles: Vec<_> = (0..self.workers)
            .map(|worker| {
                let node = worker % nodes.len();
                let session = sessions[node].next().expect("one session per worker of the node");
                let job = WorkerJob {
                    worker,
                    node,
                    pk,
                    experiment: self.clone(),
                    db: nodes[node].clone(),
                    start: start.clone(),
                    race: race.clone(),
                    trace: tracer.clone(),
                    progress: progress.clone(),
                };
                tokio::spawn(job.run_traced(session))
            })
            .collect();
        let mut per_node: Vec<Option<WorkerStats>> = (0..nodes.len()).map(|_| None).collect();
        for (worker, handle) in handles.into_iter().enumerate() {
            let stats = handle.await.map_err(|e| ExperimentError::Worker(e.to_string()))?;
            match per_node[worker % nodes.len()].as_mut() {
                None => per_node[worker % nodes.len()] = Some(stats),
                Some(totals) => totals.merge(stats),
            }
        }
        // Nodes with no worker (fewer workers than nodes) have nothing to report.
        let per_node: Vec<NodeStats> = nodes
            .iter()
            .zip(per_node)
            .enumerate()
            .filter_map(|(i, (_, stats))| {
                let workers = workers_on_node(self.workers, nodes.len(), i);
                stats.map(|stats| NodeStats { node: i + 1, workers, stats })
            })
            .collect();

        let after = read_when_settled(nodes, pk, self.settle_timeout).await;
        let mut outcome = Outcome::account(self, setup.backend(), pk, before, after, per_node);
        outcome.trace = tracer.map(|tracer| tracer.snapshot());
        Ok(outcome)
    }
}

/// How many of `workers` run on node `node` of `nodes` (round-robin).
fn workers_on_node(workers: usize, nodes: usize, node: usize) -> usize {
    workers / nodes + usize::from(node < workers % nodes)
}

/// Reads the counter after the run, on the first node that answers, trying again until `timeout`
/// (the database may be coming back). What it could not read is reported, not hidden.
async fn read_when_settled(nodes: &[Database], pk: Pk, timeout: Duration) -> Result<Counter, ErrorKind> {
    // One try per node is bounded, so a dead or hung node (whose connection attempts the pool keeps
    // retrying until its acquire timeout) cannot use up the window the live ones need.
    const PER_TRY: Duration = Duration::from_secs(1);
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        let mut last = ErrorKind::Other;
        for db in nodes {
            let read = async { db.session().await?.read_settled(pk).await };
            match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()).min(PER_TRY), read).await {
                Ok(Ok(counter)) => return Ok(counter),
                Ok(Err(err)) => {
                    tracing::debug!(%err, node = %db.redacted_url(), "cannot read the counter yet");
                    last = err.kind();
                }
                Err(_) => last = ErrorKind::PoolTimeout,
            }
        }
        if Instant::now() + pause >= deadline {
            return Err(last);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
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
    /// Which of the experiment's databases (nodes) this worker writes through.
    node: usize,
    pk: Pk,
    experiment: Experiment,
    db: Database,
    start: Arc<Barrier>,
    race: Option<Arc<RaceGate>>,
    trace: Option<Arc<Tracer>>,
    progress: Arc<Progress>,
}

impl WorkerJob {
    /// Runs the worker inside a span naming its worker number, strategy and server connection, so
    /// every debug line says who did what (the seed logged per thread and per session). The connection
    /// id costs a round trip, so it is asked for only when debug lines are wanted.
    async fn run_traced(self, mut session: Session) -> WorkerStats {
        let connection =
            if tracing::enabled!(tracing::Level::DEBUG) { session.connection_id().await.ok().flatten() } else { None };
        let span = tracing::debug_span!(
            "worker",
            n = self.worker,
            node = self.node,
            strategy = self.experiment.strategy.name(),
            connection
        );
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
            if self.progress.is_stopped() {
                // Whoever watches gave up (a request timed out): the rest is counted, not made, so the
                // run ends within one increment and releases its post.
                if deadline.is_none() {
                    stats.fail_unattempted(ErrorKind::Stopped, limit - done);
                    self.progress.fail_unattempted(ErrorKind::Stopped, limit - done);
                }
                break;
            }
            let race = if done == 0 { self.race.as_deref() } else { None };
            let began = Instant::now();
            let (fate, attempts, go_on) = self.one_increment(&mut session, done, race, &mut stats).await;
            let ended = Instant::now();
            stats.record(began, ended, attempts, fate);
            self.progress.record(fate, attempts);
            done += 1;
            if let (Fate::Failed(kind), GoOn::No) = (fate, go_on) {
                // The database is out of reach: the increments not made are failures of the same
                // kind, counted, not attempted one acquire timeout at a time.
                if deadline.is_none() {
                    stats.fail_unattempted(kind, limit - done);
                    self.progress.fail_unattempted(kind, limit - done);
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
        increment: u64,
        race: Option<&RaceGate>,
        stats: &mut WorkerStats,
    ) -> (Fate, u32, GoOn) {
        if session.is_none() {
            match self.db.session().await {
                Ok(mut fresh) => {
                    if let Some(timeout) = self.experiment.lock_timeout
                        && let Err(err) = fresh.set_lock_timeout(timeout).await
                    {
                        return (Fate::Failed(err.kind()), 1, GoOn::No);
                    }
                    *session = Some(fresh);
                }
                Err(err) => return (Fate::Failed(err.kind()), 1, GoOn::No),
            }
        }
        let Some(s) = session.as_mut() else { unreachable!("a session was just set") };
        let strategy = self.experiment.strategy;
        let mut retrier = if strategy.retries() { self.experiment.retry } else { RetryPolicy::no_retry() }.retrier();
        let mut lock_refusals = 0;
        let (result, attempts) = loop {
            let step = Step {
                pk: self.pk,
                worker: self.worker,
                increment,
                attempt: retrier.attempt(),
                race,
                trace: self.trace.as_deref(),
            };
            step.record(TraceKind::Begin, Seen::default());
            let result = strategy.attempt(s, step).await;
            trace_ending(&step, &result);
            if let Err(err) = &result {
                let kind = err.kind();
                let within_lock_budget = !kind.is_lock_refusal() || lock_refusals < self.experiment.lock_retries;
                if within_lock_budget && !self.progress.is_stopped() && retrier.retry_after(kind).await {
                    lock_refusals += u32::from(kind.is_lock_refusal());
                    stats.retried[kind_index(kind)] += 1;
                    self.progress.retried();
                    step.record(TraceKind::Retry, Seen { detail: Some(kind), ..Seen::default() });
                    continue;
                }
            }
            break (result, retrier.attempt());
        };
        match result {
            Ok(_) => (Fate::Acknowledged, attempts, GoOn::Yes),
            Err(err) => {
                tracing::debug!(worker = self.worker, %err, in_doubt = err.is_in_doubt(), "increment failed");
                if err.kind() == ErrorKind::ConnectionLost
                    && let Some(mut broken) = session.take()
                {
                    broken.close_on_drop();
                }
                let fate = if err.is_in_doubt() { Fate::InDoubt } else { Fate::Failed(err.kind()) };
                (fate, attempts, GoOn::Yes)
            }
        }
    }
}

/// Traces how an attempt ended: its commit with the value written, or its failure, a conflict with
/// another writer (the kinds a retry can get past) or another error.
fn trace_ending(step: &Step<'_>, result: &Result<i64, DbError>) {
    match result {
        Ok(like) => step.record(TraceKind::Commit, Seen { like: Some(*like), ..Seen::default() }),
        Err(err) => {
            let kind = if err.kind().is_retryable() { TraceKind::Conflict } else { TraceKind::Error };
            step.record(kind, Seen { detail: Some(err.kind()), ..Seen::default() });
        }
    }
}

/// How one increment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The strategy reported it done: it must be in the row.
    Acknowledged,
    /// Known not applied: the database refused it, or rolled it back.
    Failed(ErrorKind),
    /// The answer to the statement that would have committed it was lost.
    InDoubt,
}

/// Whether a worker should go on after an increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoOn {
    Yes,
    No,
}

/// Counts shared by the workers while they run, for whoever watches (a request that times out, a
/// progress bar, a page): what has been done so far. The outcome's figures come from each worker's
/// own [`WorkerStats`], not from these.
#[derive(Debug, Default)]
pub struct Progress {
    /// Set by whoever watches to end the run early: each worker stops before its next increment (or
    /// retry), and what it did not make is counted as `stopped`.
    stop: std::sync::atomic::AtomicBool,
    acknowledged: AtomicU64,
    failed: AtomicU64,
    in_doubt: AtomicU64,
    attempts: AtomicU64,
    /// Attempts run again after a conflict, counted as each retry starts (not when its increment ends),
    /// so a watcher sees conflicts as they happen.
    retries: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
}

/// What a running experiment has done so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgressSnapshot {
    pub acknowledged: u64,
    pub failed: u64,
    pub in_doubt: u64,
    pub attempts: u64,
    /// Attempts run again after a conflict so far.
    pub retries: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
}

impl Progress {
    fn record(&self, fate: Fate, attempts: u32) {
        self.attempts.fetch_add(u64::from(attempts), Ordering::Relaxed);
        match fate {
            Fate::Acknowledged => self.acknowledged.fetch_add(1, Ordering::Relaxed),
            Fate::InDoubt => self.in_doubt.fetch_add(1, Ordering::Relaxed),
            Fate::Failed(kind) => {
                self.errors[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    fn fail_unattempted(&self, kind: ErrorKind, n: u64) {
        self.errors[kind_index(kind)].fetch_add(n, Ordering::Relaxed);
        self.failed.fetch_add(n, Ordering::Relaxed);
    }

    /// Asks the workers to stop before their next increment.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether [`Progress::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The counts as they are now.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let errors: [u64; ErrorKind::ALL.len()] = std::array::from_fn(|i| self.errors[i].load(Ordering::Relaxed));
        ProgressSnapshot {
            acknowledged: self.acknowledged.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            in_doubt: self.in_doubt.load(Ordering::Relaxed),
            attempts: self.attempts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            errors: count_by_kind(&errors),
        }
    }
}

/// One worker's counts, merged into its node's and the experiment's at the end (no shared state while
/// running).
struct WorkerStats {
    acknowledged: u64,
    failed: u64,
    in_doubt: u64,
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
            in_doubt: 0,
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

    fn record(&mut self, began: Instant, ended: Instant, attempts: u32, fate: Fate) {
        self.attempts += u64::from(attempts);
        let measured = began >= self.measure_from;
        match fate {
            Fate::Acknowledged => {
                self.acknowledged += 1;
                if measured {
                    self.measured_acknowledged += 1;
                }
            }
            Fate::Failed(kind) => {
                self.failed += 1;
                self.errors[kind_index(kind)] += 1;
            }
            Fate::InDoubt => self.in_doubt += 1,
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
        self.in_doubt += other.in_doubt;
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

    fn expected(&self) -> u64 {
        self.acknowledged + self.failed + self.in_doubt
    }
}

/// Latency of whole increments (retries and backoff included), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LatencySchema))]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// What happened, with the proof.
///
/// With the `openapi` feature, the field docs are the descriptions the service's OpenAPI document
/// publishes (under the name `OutcomeSchema`); what only a Rust reader needs is in plain comments.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(as = OutcomeSchema, description = "The experiment's outcome (as `racelab lab --json` prints it).")
)]
pub struct Outcome {
    /// naive, atomic, pessimistic, pessimistic-nowait, pessimistic-skip-locked, optimistic, versioned,
    /// versioned-no-retry, serializable, advisory, sharded.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub strategy: Strategy,
    /// postgres, mysql or sqlite.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub database: Backend,
    // The post the experiment ran on.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub post: Pk,
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub workers: usize,
    /// Increments per worker.
    // `None` when the run was bounded by time.
    pub increments: Option<u64>,
    /// `workers * increments`.
    // Increments attempted: `acknowledged + failed + in_doubt` always, timed runs included.
    pub expected: u64,
    /// Increments the strategy reported done.
    pub acknowledged: u64,
    /// Increments known not applied (refused, or rolled back), counted by kind in `errors`.
    pub failed: u64,
    /// Increments whose commit's answer was lost: each may be in the row or not.
    pub in_doubt: u64,
    /// How many in-doubt increments committed, as the version count shows.
    // `None` when another writer makes the count unreliable, or the counter could not be read.
    pub in_doubt_committed: Option<u64>,
    /// Failed increments by kind (serialization_failure, deadlock, lock_not_available, lock_timeout, busy,
    /// stale_version, row_skipped, connection_lost, pool_timeout, not_found, unsupported, other).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Failed attempts that were retried, by kind.
    // The conflicts the strategy survived.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
    pub retried_errors: BTreeMap<ErrorKind, u64>,
    /// `like` after minus `like` before, read from the database; `null` when it could not be read.
    // Why it could not is in `counter_error`.
    pub actual: Option<i64>,
    /// Committed increments missing from the row; never negative; `null` when another writer touched
    /// the row during the run or the counter could not be read.
    // `acknowledged` plus the in-doubt increments that committed, minus `actual`: the lost updates.
    pub lost: Option<i64>,
    /// Increments the no-retry versioning run dropped after detecting a conflict.
    pub dropped: u64,
    /// Writes to the row during the run that were not this experiment's.
    pub foreign_writes: i64,
    // Attempts in all, first tries included.
    pub attempts: u64,
    /// Attempts run again after a conflict (the sum of `retried_errors`).
    // What safety cost.
    pub retries: u64,
    pub elapsed_ms: f64,
    // Acknowledged increments per second (in the measured window, for timed runs).
    pub throughput_per_s: f64,
    pub latency_ms: Latency,
    pub like_before: i64,
    // `like` after the run; `None` when it could not be read.
    pub like_after: Option<i64>,
    /// Why the counter could not be read after the run (an error kind), when it could not.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub counter_error: Option<ErrorKind>,
    /// The same figures per node the workers wrote through.
    // One entry on a single server.
    pub nodes: Vec<NodeOutcome>,
    /// The run's trace, when [`Experiment::trace`] asked for one. Not part of the outcome's JSON
    /// (which the lab prints and files keep): serialize [`Trace`] on its own.
    #[serde(skip)]
    pub trace: Option<Trace>,
}

/// One node's counts, before they become a [`NodeOutcome`].
struct NodeStats {
    node: usize,
    workers: usize,
    stats: WorkerStats,
}

/// One node's share of an experiment.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = NodeSchema))]
pub struct NodeOutcome {
    /// The node's number, from 1, in the order the databases were given.
    // The caller knows their URLs; an outcome never carries one, so it can be shown to anyone.
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub node: usize,
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub workers: usize,
    pub acknowledged: u64,
    pub failed: u64,
    pub in_doubt: u64,
    pub retries: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
    pub errors: BTreeMap<ErrorKind, u64>,
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
    pub retried_errors: BTreeMap<ErrorKind, u64>,
}

impl NodeOutcome {
    fn of(node: usize, workers: usize, stats: &WorkerStats) -> Self {
        Self {
            node,
            workers,
            acknowledged: stats.acknowledged,
            failed: stats.failed,
            in_doubt: stats.in_doubt,
            retries: stats.retried.iter().sum(),
            errors: count_by_kind(&stats.errors),
            retried_errors: count_by_kind(&stats.retried),
        }
    }
}

/// What the version column says about the writes during a run.
struct VersionAccount {
    foreign_writes: i64,
    in_doubt_committed: Option<u64>,
}

impl VersionAccount {
    /// Every write we committed bumped the version once: `acknowledged` of them for sure, and up to
    /// `in_doubt` more. A count outside that range means writes that were not ours.
    fn of(versions: i64, acknowledged: i64, in_doubt: i64) -> Self {
        let foreign_writes =
            if versions < acknowledged { versions - acknowledged } else { (versions - acknowledged - in_doubt).max(0) };
        let in_doubt_committed = (foreign_writes == 0).then(|| (versions - acknowledged) as u64);
        Self { foreign_writes, in_doubt_committed }
    }
}

impl Outcome {
    fn account(
        experiment: &Experiment,
        backend: Backend,
        pk: Pk,
        before: Counter,
        after: Result<Counter, ErrorKind>,
        per_node: Vec<NodeStats>,
    ) -> Self {
        let nodes: Vec<NodeOutcome> = per_node.iter().map(|n| NodeOutcome::of(n.node, n.workers, &n.stats)).collect();
        let mut per_node = per_node.into_iter().map(|n| n.stats);
        let mut stats = per_node.next().unwrap_or_else(WorkerStats::new);
        for node in per_node {
            stats.merge(node);
        }
        let expected = stats.expected();
        let acknowledged = stats.acknowledged as i64;
        let (actual, counted) = match after {
            Ok(after) => {
                let account = VersionAccount::of(after.version - before.version, acknowledged, stats.in_doubt as i64);
                let actual = after.like - before.like;
                (Some(actual), Some((after, account)))
            }
            Err(_) => (None, None),
        };
        let foreign_writes = counted.as_ref().map_or(0, |(_, a)| a.foreign_writes);
        let in_doubt_committed = counted.as_ref().and_then(|(_, a)| a.in_doubt_committed);
        let lost = match (actual, in_doubt_committed) {
            (Some(actual), Some(committed)) => Some(acknowledged + committed as i64 - actual).filter(|l| *l >= 0),
            _ => None,
        };
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
            in_doubt: stats.in_doubt,
            in_doubt_committed,
            dropped: if experiment.strategy == Strategy::VersionedNoRetry {
                stats.errors[kind_index(ErrorKind::StaleVersion)] + stats.errors[kind_index(ErrorKind::Deadlock)]
            } else {
                0
            },
            errors,
            retried_errors,
            actual,
            lost,
            foreign_writes,
            attempts: stats.attempts,
            retries: stats.retried.iter().sum(),
            elapsed_ms: (elapsed.as_secs_f64() * 1e6).round() / 1e3,
            throughput_per_s: (throughput * 10.0).round() / 10.0,
            latency_ms: Latency {
                p50: ms(h.value_at_quantile(0.50)),
                p95: ms(h.value_at_quantile(0.95)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
            },
            like_before: before.like,
            like_after: counted.map(|(after, _)| after.like),
            counter_error: after.err(),
            nodes,
            trace: None,
        }
    }

    /// Whether the proof holds: every acknowledged increment is in the row, and nothing is there that
    /// the in-doubt ones cannot explain (`acknowledged <= actual <= acknowledged + in_doubt`). `None`
    /// when the counter could not be read.
    pub fn invariant_holds(&self) -> Option<bool> {
        let actual = self.actual?;
        let acknowledged = self.acknowledged as i64;
        Some(acknowledged <= actual && actual <= acknowledged + self.in_doubt as i64)
    }

    /// Whether every increment that did not succeed was refused by a lock (`NOWAIT`, `SKIP LOCKED`, a
    /// lock timeout) and none succeeded: the row was held by someone else the whole time.
    pub fn refused_by_locks(&self) -> bool {
        self.acknowledged == 0
            && self.in_doubt == 0
            && self.failed > 0
            && self.errors.iter().all(|(kind, _)| kind.is_lock_refusal())
    }

    /// Whether the database was out of reach: the counter could not be read, or increments failed
    /// because no connection could be had or kept.
    pub fn database_unavailable(&self) -> bool {
        self.counter_error.is_some() || self.in_doubt > 0 || self.errors.keys().any(|kind| kind.means_unreachable())
    }

    /// One line a newcomer understands.
    pub fn verdict(&self) -> String {
        let mut verdict = match (self.actual, self.lost) {
            (None, _) => format!(
                "the counter could not be read after the run ({}): {} acknowledged increments cannot be checked",
                self.counter_error.map_or("unknown", ErrorKind::as_str),
                self.acknowledged
            ),
            (Some(_), None) if self.foreign_writes != 0 => format!(
                "another writer changed post {} during the run ({} writes not ours): lost updates cannot be counted",
                self.post, self.foreign_writes
            ),
            (Some(actual), None) => format!(
                "the row moved by {actual}, more than the {} increments this run could have made: another writer",
                self.acknowledged + self.in_doubt
            ),
            (Some(_), Some(lost)) if lost > 0 => format!(
                "lost {lost} of {} updates: concurrent read-modify-writes read the same value and overwrote each other",
                self.acknowledged + self.in_doubt_committed.unwrap_or(0)
            ),
            (Some(_), Some(_)) if self.dropped > 0 => format!(
                "dropped {} of {} increments: the version check caught each conflict, but nothing retried it; \
                 no acknowledged update lost",
                self.dropped, self.expected
            ),
            (Some(_), Some(_)) if self.retries > 0 => {
                format!("no update lost, {} {}", self.retries, plural(self.retries, "retry", "retries"))
            }
            (Some(_), Some(_)) => "no update lost".to_owned(),
        };
        if self.in_doubt > 0 {
            let committed = match self.in_doubt_committed {
                Some(n) => format!(", {n} of them committed"),
                None => String::new(),
            };
            verdict.push_str(&format!(
                "; {} in doubt (the connection was lost during the commit{committed})",
                self.in_doubt
            ));
        }
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

    fn outcome_with(
        strategy: Strategy,
        acknowledged: u64,
        failed: &[(ErrorKind, u64)],
        in_doubt: u64,
        before: (i64, i64),
        after: Result<(i64, i64), ErrorKind>,
    ) -> Outcome {
        let mut stats = WorkerStats::new();
        stats.acknowledged = acknowledged;
        stats.in_doubt = in_doubt;
        for (kind, n) in failed {
            stats.failed += n;
            stats.errors[kind_index(*kind)] += n;
        }
        let experiment = Experiment::new(strategy, 2, stats.expected() / 2);
        let counter = |(like, version)| Counter { like, version };
        let node = NodeStats { node: 1, workers: 2, stats };
        Outcome::account(&experiment, Backend::Postgres, 1, counter(before), after.map(counter), vec![node])
    }

    fn outcome(
        strategy: Strategy,
        acknowledged: u64,
        failed: &[(ErrorKind, u64)],
        before: (i64, i64),
        after: (i64, i64),
    ) -> Outcome {
        outcome_with(strategy, acknowledged, failed, 0, before, Ok(after))
    }

    #[test]
    fn lost_updates_are_acknowledged_minus_actual() {
        // Naive: 50 writes landed (50 versions), but the counter moved by 27.
        let o = outcome(Strategy::Naive, 50, &[], (0, 0), (27, 50));
        assert_eq!((o.actual, o.lost, o.foreign_writes), (Some(27), Some(23), 0));
        assert!(o.verdict().starts_with("lost 23 of 50 updates"), "{}", o.verdict());
        assert_eq!(o.invariant_holds(), Some(false));
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
    fn an_in_doubt_commit_that_landed_is_counted_as_such_not_as_a_negative_loss() {
        let o = outcome_with(Strategy::Atomic, 9, &[], 1, (0, 0), Ok((10, 10)));
        assert_eq!((o.foreign_writes, o.lost, o.in_doubt, o.in_doubt_committed), (0, Some(0), 1, Some(1)));
        assert_eq!((o.expected, o.failed), (10, 0));
        assert_eq!(o.invariant_holds(), Some(true));
        assert!(o.verdict().contains("1 in doubt") && o.verdict().contains("1 of them committed"), "{}", o.verdict());
    }

    #[test]
    fn an_in_doubt_commit_that_did_not_land_keeps_the_proof() {
        let o = outcome_with(Strategy::Pessimistic(LockMode::Wait), 9, &[], 1, (0, 0), Ok((9, 9)));
        assert_eq!((o.lost, o.in_doubt_committed), (Some(0), Some(0)));
        assert_eq!(o.invariant_holds(), Some(true));
    }

    #[test]
    fn a_lost_update_hidden_behind_an_in_doubt_commit_is_still_found() {
        // 10 writes landed (9 acknowledged, the in-doubt one too), the counter moved by 9.
        let o = outcome_with(Strategy::Naive, 9, &[], 1, (0, 0), Ok((9, 10)));
        assert_eq!(o.lost, Some(1));
    }

    #[test]
    fn an_unreadable_counter_keeps_what_was_counted() {
        let o = outcome_with(
            Strategy::Atomic,
            7,
            &[(ErrorKind::PoolTimeout, 3)],
            2,
            (0, 0),
            Err(ErrorKind::ConnectionLost),
        );
        assert_eq!(
            (o.actual, o.lost, o.like_after, o.counter_error),
            (None, None, None, Some(ErrorKind::ConnectionLost))
        );
        assert_eq!((o.acknowledged, o.failed, o.in_doubt, o.expected), (7, 3, 2, 12));
        assert_eq!(o.invariant_holds(), None);
        assert!(o.database_unavailable());
        assert!(
            o.verdict().starts_with("the counter could not be read after the run (connection_lost)"),
            "{}",
            o.verdict()
        );
    }

    #[test]
    fn only_stale_versions_and_certification_conflicts_count_as_dropped() {
        let failed = [(ErrorKind::StaleVersion, 2), (ErrorKind::Deadlock, 1), (ErrorKind::PoolTimeout, 1)];
        let o = outcome(Strategy::VersionedNoRetry, 7, &failed, (0, 0), (7, 7));
        assert_eq!((o.dropped, o.failed), (3, 4));
        assert!(
            o.verdict().contains("4 increments gave up (deadlock: 1, stale_version: 2, pool_timeout: 1)"),
            "{}",
            o.verdict()
        );
    }

    #[test]
    fn dropped_increments_are_the_no_retry_failures() {
        let o = outcome(Strategy::VersionedNoRetry, 7, &[(ErrorKind::StaleVersion, 3)], (0, 0), (7, 7));
        assert_eq!((o.dropped, o.lost, o.failed), (3, Some(0), 3));
        assert!(o.verdict().starts_with("dropped 3 of 10 increments"), "{}", o.verdict());
    }

    #[test]
    fn refused_by_locks_means_nothing_succeeded_and_every_failure_was_a_lock() {
        let o =
            outcome(Strategy::Pessimistic(LockMode::NoWait), 0, &[(ErrorKind::LockNotAvailable, 4)], (0, 0), (0, 0));
        assert!(o.refused_by_locks());
        let o =
            outcome(Strategy::Pessimistic(LockMode::NoWait), 1, &[(ErrorKind::LockNotAvailable, 3)], (0, 0), (1, 1));
        assert!(!o.refused_by_locks());
    }

    #[test]
    fn retries_are_counted_even_when_a_dead_node_left_increments_unattempted() {
        let mut stats = WorkerStats::new();
        stats.acknowledged = 10;
        stats.attempts = 14;
        stats.retried[kind_index(ErrorKind::Deadlock)] = 4;
        stats.fail_unattempted(ErrorKind::PoolTimeout, 90);
        let experiment = Experiment::new(Strategy::Atomic, 1, 100);
        let node = NodeStats { node: 1, workers: 1, stats };
        let counter = Counter { like: 10, version: 10 };
        let o =
            Outcome::account(&experiment, Backend::MySql, 1, Counter { like: 0, version: 0 }, Ok(counter), vec![node]);
        assert_eq!((o.expected, o.retries, o.nodes[0].retries), (100, 4, 4));
    }

    #[test]
    fn workers_spread_round_robin_over_nodes() {
        let spread: Vec<usize> = (0..3).map(|node| workers_on_node(7, 3, node)).collect();
        assert_eq!(spread, [3, 2, 2]);
        assert_eq!(workers_on_node(2, 3, 2), 0);
    }
}
