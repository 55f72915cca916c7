//! Runs a spec with isolationtester's semantics, step for step, on any backend
//! (`SpecBackend`: PostgreSQL, MariaDB, SQLite).
//!
//! One connection per session and a control connection. Each permutation: the setups (control
//! connection), the sessions' setups, the steps, the sessions' teardowns, the teardown. A step is
//! sent and watched: it completes, or the database says its session is blocked
//! (PostgreSQL's `pg_isolation_test_session_is_blocked`, what isolationtester asks; InnoDB's lock
//! monitor; SQLite's `SQLITE_BUSY` answer, after which the step is sent again each time the runner
//! looks at it), and then it is reported
//! waiting and the next step is sent; after each step every waiting one is looked at again and
//! reported `<... completed>` once it answered (and its blocker annotations allow). Nothing is
//! decided by a timer: a step that runs is awaited for a short interval at a time, between which the
//! server is asked whether it is blocked. A step running past the step timeout is cancelled
//! (`pg_cancel_backend`, `KILL QUERY`; on SQLite it is no longer sent again and its busy error is its
//! answer), and after twice the timeout the run stops, as isolationtester does.
//!
//! A failure of the run itself (a setup that fails, a permutation whose steps block each other) is
//! reported as isolationtester reports it, and the permutation's teardowns are still tried.
//!
//! [`RunOptions`] says how a run departs from that, for racelab's anomaly suite, which runs its
//! Hermitage specs as a client runs a schedule, at each level of a backend ([`Semantics::Schedule`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::backend::{SpecBackend, StepAnswer};
use super::level::Level;
use super::model::{Blocker, Permutation, Spec};
use super::mysql::MariaDb;
use super::pg::Pg;
use super::report::{Answer, Event, Part, PermutationRun, SpecRun, StepError};
use super::session::{SessionConn, StepFuture, exec_control};
use super::sqlite::SqliteFile;
use super::translate::translate_at;
use crate::Backend;
use crate::db::DatabaseUrl;

/// How long to wait for a step before asking the server whether it is blocked (or, on SQLite, before
/// sending a step refused busy again while nothing else can move).
const POLL: Duration = Duration::from_millis(2);

/// isolationtester's own limit (PostgreSQL 15): a step waiting this long is cancelled.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// How a run goes: isolationtester's way by default ([`RunOptions::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// A step running this long is cancelled; twice this long, the run stops.
    pub step_timeout: Duration,
    /// Opens every transaction at this level (one of the backend's) instead of the spec's own
    /// ([`super::translate::translate_at`]).
    pub level: Option<Level>,
    pub semantics: Semantics,
}

impl RunOptions {
    /// isolationtester's run, with its step timeout.
    pub fn new(step_timeout: Duration) -> Self {
        RunOptions { step_timeout, level: None, semantics: Semantics::IsolationTester }
    }
}

/// What the order of a permutation and an error mean.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Semantics {
    /// isolationtester's: the steps go in the permutation's order, and a step of a session that
    /// still waits waits for it; an error ends its step only; SQLite's busy answer is a wait.
    #[default]
    IsolationTester,
    /// A client's schedule (`racelab anomalies`): a step of a session that still waits is held back
    /// while the later steps of the other sessions go on (its answer, when the lock is released,
    /// lets it go); a step, or a session's setup, that fails ends its session's transaction (rolled
    /// back, its later steps neither run nor reported), as a client gives up on a failed
    /// transaction; SQLite's busy answer is the step's error, as a client without a busy timeout
    /// gets it. The permutation is the schedule, written in the order it is meant to run.
    Schedule,
}

/// Why a spec could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("connection {index} to {url} failed: {source}")]
    Connect { index: usize, url: String, source: sqlx::Error },
    #[error("the control connection failed: {0}")]
    Control(sqlx::Error),
}

/// The run stopped, as isolationtester stops (its message on stderr, exit status 1), or because it
/// was interrupted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stopped {
    pub message: String,
    /// The teardowns tried after the stop that failed, each with the server's error: what may be
    /// left behind in the database.
    pub not_cleaned: Vec<String>,
}

/// The message of a run stopped by its caller (ctrl-c).
pub const INTERRUPTED: &str = "interrupted";

/// A spec's run: the permutations run (the last one possibly cut short) and why it stopped early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub run: SpecRun,
    pub stopped: Option<Stopped>,
    /// The spec's statements said in this backend's form ([`super::translate`]), one line each.
    pub translations: Vec<String>,
}

const NONBLOCK: u8 = 1;
const RETRY: u8 = 2;

/// A step sent and not yet reported complete.
struct Active<C> {
    /// Its index in the permutation.
    pstep: usize,
    handle: Option<StepFuture<C>>,
    answer: Option<Answer>,
    /// SQLite: refused busy; the statements left to send again, and the answer so far (the tables
    /// of the statements that ran, and the busy error, its answer if it is cancelled).
    busy: Option<(String, Answer)>,
}

struct Runner<'a, B: SpecBackend> {
    /// The database, or the nodes of one cluster (the first runs the setups and teardowns).
    urls: &'a [DatabaseUrl],
    /// Set by the caller to stop the run.
    interrupted: &'a AtomicBool,
    spec: &'a Spec,
    /// A control connection per node: the first runs the setups and teardowns; each asks its own
    /// node whether a session there is blocked, and cancels its steps (a connection id is a node's).
    controls: Vec<B::Conn>,
    sessions: Vec<SessionConn<B>>,
    ids: Vec<i64>,
    /// The node each session's connection is on.
    node: Vec<usize>,
    step_timeout: Duration,
    semantics: Semantics,
    /// [`Semantics::Schedule`]: the sessions whose transaction failed in this permutation.
    failed: Vec<bool>,
    events: Vec<Event>,
    active: Vec<Option<Active<B::Conn>>>,
    total_notices: Vec<u64>,
    any_new_notice: bool,
    /// For the permutation running: per step, per blocker, the notice count it waits for.
    targets: Vec<Vec<u64>>,
}

/// Why a permutation ended before its end.
enum Halt {
    Stopped(String),
    Error(RunError),
}

impl From<sqlx::Error> for Halt {
    fn from(err: sqlx::Error) -> Self {
        Halt::Error(RunError::Control(err))
    }
}

/// Runs `permutations` of `spec` on the database at `url`.
pub async fn run(
    url: &DatabaseUrl,
    spec: &Spec,
    permutations: &[Permutation],
    step_timeout: Duration,
) -> Result<Outcome, RunError> {
    run_until(url, spec, permutations, step_timeout, &AtomicBool::new(false)).await
}

/// [`run`], stopped when `interrupted` becomes true (a ctrl-c): the step running or waiting is
/// cancelled, every session rolled back and the teardowns tried (the spec's on a fresh connection if
/// the control connection is gone); the outcome's [`Stopped`] says what could not be cleaned.
pub async fn run_until(
    url: &DatabaseUrl,
    spec: &Spec,
    permutations: &[Permutation],
    step_timeout: Duration,
    interrupted: &AtomicBool,
) -> Result<Outcome, RunError> {
    run_on_nodes(std::slice::from_ref(url), spec, permutations, step_timeout, interrupted).await
}

/// [`run_until`] on the nodes of one cluster (MariaDB Galera): session `i` on node `i % nodes`, the
/// setups and teardowns on the first node. Every connection waits, before each statement, until its
/// node has applied what the cluster committed before it (`wsrep_sync_wait`), so a session sees the
/// setup's rows and the other sessions' commits wherever it is; a conflict between nodes is no lock
/// wait but a certification failure at commit (a deadlock error), which is what a spec shows there.
pub async fn run_on_nodes(
    urls: &[DatabaseUrl],
    spec: &Spec,
    permutations: &[Permutation],
    step_timeout: Duration,
    interrupted: &AtomicBool,
) -> Result<Outcome, RunError> {
    run_with(urls, spec, permutations, RunOptions::new(step_timeout), interrupted).await
}

/// [`run_on_nodes`], run as `options` say.
pub async fn run_with(
    urls: &[DatabaseUrl],
    spec: &Spec,
    permutations: &[Permutation],
    options: RunOptions,
    interrupted: &AtomicBool,
) -> Result<Outcome, RunError> {
    let backend = urls.first().map_or(Backend::Postgres, DatabaseUrl::backend);
    let translated = translate_at(spec, backend, options.level);
    let spec = &translated.spec;
    let mut outcome = match backend {
        Backend::Postgres => run_on::<Pg>(urls, spec, permutations, options, interrupted).await,
        Backend::MySql => run_on::<MariaDb>(urls, spec, permutations, options, interrupted).await,
        Backend::Sqlite => run_on::<SqliteFile>(urls, spec, permutations, options, interrupted).await,
    }?;
    outcome.translations = translated.notes;
    Ok(outcome)
}

async fn run_on<B: SpecBackend>(
    urls: &[DatabaseUrl],
    spec: &Spec,
    permutations: &[Permutation],
    options: RunOptions,
    interrupted: &AtomicBool,
) -> Result<Outcome, RunError> {
    let cluster = urls.len() > 1;
    let connect_error = |index, url: &DatabaseUrl, source| RunError::Connect { index, url: url.redacted(), source };
    let mut controls = Vec::with_capacity(urls.len());
    for url in urls {
        let mut conn = B::connect(url, "control connection").await.map_err(|e| connect_error(0, url, e))?;
        if cluster {
            B::join_cluster(&mut conn).await.map_err(|e| connect_error(0, url, e))?;
        }
        controls.push(conn);
    }
    let node: Vec<usize> = (0..spec.sessions.len()).map(|i| i % urls.len().max(1)).collect();
    let mut sessions = Vec::with_capacity(spec.sessions.len());
    for (i, session) in spec.sessions.iter().enumerate() {
        let url = &urls[node[i]];
        let mut conn = SessionConn::<B>::open(url, &session.name).await.map_err(|e| connect_error(i + 1, url, e))?;
        if cluster && let Some(c) = conn.conn.as_mut() {
            B::join_cluster(c).await.map_err(|e| connect_error(i + 1, url, e))?;
        }
        sessions.push(conn);
    }
    let ids = sessions.iter().map(|s| s.id).collect();
    // The control connection's own notices are dropped, as isolationtester drops them.
    let _ = B::session_id(&mut controls[0]).await.map_err(RunError::Control)?;
    let mut runner = Runner::<B> {
        urls,
        interrupted,
        spec,
        controls,
        node,
        active: sessions.iter().map(|_| None).collect(),
        total_notices: vec![0; sessions.len()],
        failed: vec![false; sessions.len()],
        sessions,
        ids,
        step_timeout: options.step_timeout,
        semantics: options.semantics,
        events: Vec::new(),
        any_new_notice: false,
        targets: Vec::new(),
    };
    let mut run =
        SpecRun { sessions: spec.sessions.iter().map(|s| s.name.clone()).collect(), permutations: Vec::new() };
    let mut stopped = None;
    for permutation in permutations {
        let result = runner.permutation(permutation).await;
        let events = std::mem::take(&mut runner.events);
        run.permutations
            .push(PermutationRun { steps: permutation.steps.iter().map(|s| s.name.clone()).collect(), events });
        match result {
            Ok(()) => {}
            Err(halt) => {
                let not_cleaned = runner.clean_up().await;
                match halt {
                    Halt::Stopped(message) => {
                        stopped = Some(Stopped { message, not_cleaned });
                        break;
                    }
                    Halt::Error(err) => return Err(err),
                }
            }
        }
    }
    runner.close().await;
    Ok(Outcome { run, stopped, translations: Vec::new() })
}

impl<B: SpecBackend> Runner<'_, B> {
    async fn permutation(&mut self, permutation: &Permutation) -> Result<(), Halt> {
        self.targets = permutation.steps.iter().map(|s| vec![0; s.blockers.len()]).collect();
        self.failed.fill(false);
        let schedule = self.semantics == Semantics::Schedule;
        for sql in &self.spec.setups {
            let answer = exec_control::<B>(&mut self.controls[0], sql).await;
            self.part_answer(Part::Setup, answer, true)?;
        }
        for s in 0..self.sessions.len() {
            let Some(sql) = &self.spec.sessions[s].setup else { continue };
            let answer = self.sessions[s].exec(sql).await.unwrap_or_default();
            self.flush_notices(s);
            let failed = answer.error.is_some();
            // In a schedule, a session whose transaction could not begin is a result, not a stop.
            self.part_answer(Part::SessionSetup(self.spec.sessions[s].name.clone()), answer, !schedule)?;
            if failed {
                self.end_transaction(s).await;
            }
        }
        let mut waiting: Vec<usize> = Vec::new();
        if schedule {
            self.schedule(permutation, &mut waiting).await?;
        } else {
            self.in_order(permutation, &mut waiting).await?;
        }
        self.try_complete_steps(permutation, &mut waiting, RETRY).await?;
        if !waiting.is_empty() {
            return Err(Halt::Stopped("failed to complete permutation due to mutually-blocking steps".to_owned()));
        }
        self.teardowns().await;
        Ok(())
    }

    /// isolationtester's order: each step in turn, after the earlier step of its session completed.
    async fn in_order(&mut self, permutation: &Permutation, waiting: &mut Vec<usize>) -> Result<(), Halt> {
        for i in 0..permutation.steps.len() {
            self.check_interrupted()?;
            let s = permutation.steps[i].step.session;
            if self.active[s].is_some() {
                let start = Instant::now();
                while let Some(old) = self.active[s].as_ref().map(|a| a.pstep) {
                    if !self.try_complete_step(permutation, old, RETRY).await? {
                        waiting.retain(|&w| w != old);
                    }
                    self.try_complete_steps(permutation, waiting, NONBLOCK | RETRY).await?;
                    if let Some(still) = self.active[s].as_ref().map(|a| a.pstep)
                        && start.elapsed() > 2 * self.step_timeout
                    {
                        let active: Vec<&str> =
                            self.active.iter().flatten().map(|a| permutation.steps[a.pstep].name.as_str()).collect();
                        return Err(Halt::Stopped(format!(
                            "step {} timed out after {} seconds\nactive steps are: {}",
                            permutation.steps[still].name,
                            start.elapsed().as_secs(),
                            active.join(" ")
                        )));
                    }
                }
            }
            self.send(permutation, i, waiting).await?;
        }
        Ok(())
    }

    /// A schedule's order ([`Semantics::Schedule`]): the first step not yet sent whose session is
    /// free; when every step left belongs to a session that waits, the first of them to answer (its
    /// lock released by a deadlock's victim, or the step cancelled at the step timeout).
    async fn schedule(&mut self, permutation: &Permutation, waiting: &mut Vec<usize>) -> Result<(), Halt> {
        let mut sent = vec![false; permutation.steps.len()];
        loop {
            self.check_interrupted()?;
            let session = |i: usize| permutation.steps[i].step.session;
            let next = (0..sent.len()).find(|&i| !sent[i] && self.active[session(i)].is_none());
            match next {
                Some(i) => {
                    sent[i] = true;
                    if !self.failed[session(i)] {
                        self.send(permutation, i, waiting).await?;
                    }
                }
                None if sent.iter().all(|s| *s) => return Ok(()),
                None => self.await_any(permutation, waiting).await?,
            }
        }
    }

    /// Waits until one of the `waiting` steps completes; cancels them all at the step timeout, and
    /// stops the run at twice it.
    async fn await_any(&mut self, permutation: &Permutation, waiting: &mut Vec<usize>) -> Result<(), Halt> {
        let (start, before) = (Instant::now(), waiting.len());
        let mut canceled = false;
        while waiting.len() == before {
            self.try_complete_steps(permutation, waiting, NONBLOCK | RETRY).await?;
            let elapsed = start.elapsed();
            if elapsed > self.step_timeout && !canceled {
                for &w in waiting.iter() {
                    let s = permutation.steps[w].step.session;
                    self.cancel(s).await?;
                    self.events
                        .push(Event::Canceled { step: permutation.steps[w].name.clone(), seconds: elapsed.as_secs() });
                }
                canceled = true;
            }
            if waiting.len() == before && elapsed > 2 * self.step_timeout {
                let names: Vec<&str> = waiting.iter().map(|&w| permutation.steps[w].name.as_str()).collect();
                return Err(Halt::Stopped(format!("steps {} waited {} seconds", names.join(" "), elapsed.as_secs())));
            }
        }
        Ok(())
    }

    /// Sends step `i` of the permutation and reports it, complete or waiting (then in `waiting`),
    /// then looks at the steps that were waiting.
    async fn send(&mut self, permutation: &Permutation, i: usize, waiting: &mut Vec<usize>) -> Result<(), Halt> {
        let s = permutation.steps[i].step.session;
        if self.controls.len() > 1 {
            // On a cluster, a step is sent once every node has applied what was committed
            // before it, so it meets the same state, and fails at the same step, on every run.
            B::settle(&mut self.controls).await?;
        }
        let step = self.spec.step(permutation.steps[i].step);
        let handle = self.sessions[s].start(&step.sql);
        self.active[s] = Some(Active { pstep: i, handle, answer: None, busy: None });
        for (j, blocker) in permutation.steps[i].blockers.iter().enumerate() {
            if let Blocker::Notices { step, count, .. } = blocker {
                self.targets[i][j] = u64::from(*count) + self.total_notices[step.session];
            }
        }
        let must_wait = self.try_complete_step(permutation, i, NONBLOCK).await?;
        self.try_complete_steps(permutation, waiting, NONBLOCK | RETRY).await?;
        if must_wait {
            waiting.push(i);
        }
        Ok(())
    }

    /// [`Semantics::Schedule`]: session `s`'s transaction failed; it is rolled back (where the
    /// database has not already ended it) and its later steps are not sent. What the rollback says
    /// (PostgreSQL's warning after a refused COMMIT) is nobody's answer.
    async fn end_transaction(&mut self, s: usize) {
        let _ = self.sessions[s].exec("ROLLBACK").await;
        self.sessions[s].inbox.take();
        self.failed[s] = true;
    }

    /// The sessions' teardowns, then the teardown; a failure is reported and the rest still run.
    async fn teardowns(&mut self) {
        for s in 0..self.sessions.len() {
            let Some(sql) = &self.spec.sessions[s].teardown else { continue };
            let answer = self.sessions[s].exec(sql).await.unwrap_or_default();
            self.flush_notices(s);
            let _ = self.part_answer(Part::SessionTeardown(self.spec.sessions[s].name.clone()), answer, false);
        }
        if let Some(sql) = &self.spec.teardown {
            let answer = exec_control::<B>(&mut self.controls[0], sql).await;
            let _ = self.part_answer(Part::Teardown, answer, false);
        }
    }

    /// Records a setup's or teardown's answer; a failed setup stops the run.
    fn part_answer(&mut self, part: Part, answer: Answer, is_setup: bool) -> Result<(), Halt> {
        if let Some(error) = answer.error {
            let message = stopped_message(&part, &error);
            self.events.push(Event::PartFailed { part, error });
            return if is_setup { Err(Halt::Stopped(message)) } else { Ok(()) };
        }
        if let Some(table) = answer.tables.into_iter().next_back() {
            self.events.push(Event::Rows { part, table });
        }
        Ok(())
    }

    /// Reports the notices session `s` received since last looked at, as libpq hands them over
    /// while isolationtester reads that session's connection.
    fn flush_notices(&mut self, s: usize) {
        let notices = self.sessions[s].inbox.take();
        if notices.is_empty() {
            return;
        }
        self.total_notices[s] += notices.len() as u64;
        self.any_new_notice = true;
        let session = self.spec.sessions[s].name.clone();
        self.events.extend(notices.into_iter().map(|notice| Event::Notice { session: session.clone(), notice }));
    }

    /// isolationtester's `try_complete_steps`: looks at every waiting step (repeating while a
    /// completion or a notice may have released a blocker annotation); drops the completed ones.
    async fn try_complete_steps(
        &mut self,
        permutation: &Permutation,
        waiting: &mut Vec<usize>,
        flags: u8,
    ) -> Result<(), Halt> {
        loop {
            self.any_new_notice = false;
            let before = waiting.len();
            let mut have_blocker = false;
            let mut w = 0;
            while w < waiting.len() {
                if self.try_complete_step(permutation, waiting[w], flags).await? {
                    have_blocker |= !permutation.steps[waiting[w]].blockers.is_empty();
                    w += 1;
                } else {
                    waiting.remove(w);
                }
            }
            if !(have_blocker && (waiting.len() < before || self.any_new_notice)) {
                return Ok(());
            }
        }
    }

    /// isolationtester's `try_complete_step`: `true` while the step is not complete (with
    /// `NONBLOCK`: it waits for a lock; or a blocker annotation holds its report back).
    async fn try_complete_step(&mut self, permutation: &Permutation, p: usize, flags: u8) -> Result<bool, Halt> {
        let pstep = &permutation.steps[p];
        let s = pstep.step.session;
        let sql = &self.spec.step(pstep.step).sql;
        let session = &self.spec.sessions[s].name;
        let waiting_event = || Event::Waiting { step: pstep.name.clone(), session: session.clone(), sql: sql.clone() };
        if flags & RETRY == 0 && pstep.blockers.contains(&Blocker::Once) {
            self.events.push(waiting_event());
            return Ok(true);
        }
        let start = Instant::now();
        let mut canceled = false;
        loop {
            let Some(active) = self.active[s].as_mut() else { return Ok(false) };
            if active.answer.is_some() {
                break;
            }
            // SQLite: a step refused busy is sent again, from the statement that was refused.
            if active.handle.is_none()
                && let Some((rest, _)) = &active.busy
            {
                active.handle = self.sessions[s].start(rest);
            }
            let Some(handle) = active.handle.as_mut() else {
                // The session's connection was busy: cannot happen, a session runs one step at a time.
                active.answer = Some(Answer::default());
                break;
            };
            match tokio::time::timeout(POLL, handle.as_mut()).await {
                Ok((conn, step)) => {
                    active.handle = None;
                    self.sessions[s].conn = Some(conn);
                    let blocked = self.take_answer(s, step);
                    self.flush_notices(s);
                    if !blocked {
                        break;
                    }
                    if flags & NONBLOCK != 0 {
                        if flags & RETRY == 0 {
                            self.events.push(waiting_event());
                        }
                        return Ok(true);
                    }
                    // Waited for: nothing else moves meanwhile, so it can only be sent again until the
                    // step timeout gives up on it (as isolationtester waits for a PostgreSQL step).
                    tokio::time::sleep(POLL).await;
                }
                Err(_) => {
                    self.check_interrupted()?;
                    self.flush_notices(s);
                    if flags & NONBLOCK != 0
                        && B::is_blocked(&mut self.controls[self.node[s]], self.ids[s], &self.ids).await?
                    {
                        // Read what the server sent meanwhile (notices; or the answer, then it
                        // is complete after all), as isolationtester's PQconsumeInput does.
                        if let Some(handle) = self.active[s].as_mut().and_then(|a| a.handle.as_mut())
                            && let Ok((conn, step)) = tokio::time::timeout(Duration::ZERO, handle.as_mut()).await
                        {
                            if let Some(active) = self.active[s].as_mut() {
                                active.handle = None;
                            }
                            self.sessions[s].conn = Some(conn);
                            self.take_answer(s, step);
                            self.flush_notices(s);
                            break;
                        }
                        self.flush_notices(s);
                        if flags & RETRY == 0 {
                            self.events.push(waiting_event());
                        }
                        return Ok(true);
                    }
                }
            }
            self.check_interrupted()?;
            let elapsed = start.elapsed();
            if elapsed > self.step_timeout && !canceled {
                self.cancel(s).await?;
                self.events.push(Event::Canceled { step: pstep.name.clone(), seconds: elapsed.as_secs() });
                canceled = true;
            }
            if elapsed > 2 * self.step_timeout {
                return Err(Halt::Stopped(format!(
                    "step {} timed out after {} seconds",
                    pstep.name,
                    elapsed.as_secs()
                )));
            }
        }
        if self.has_blocker(permutation, p) {
            if flags & RETRY == 0 {
                self.events.push(waiting_event());
            }
            return Ok(true);
        }
        let answer = self.active[s].take().and_then(|a| a.answer).unwrap_or_default();
        if self.semantics == Semantics::Schedule && answer.error.is_some() {
            self.end_transaction(s).await;
        }
        self.events.push(Event::Done {
            step: pstep.name.clone(),
            session: session.clone(),
            sql: sql.clone(),
            waited: flags & RETRY != 0,
            answer,
        });
        Ok(false)
    }

    /// Keeps what a step of session `s` answered; `true` when it was refused busy (SQLite) and is
    /// to be sent again, what it answered so far kept with it.
    fn take_answer(&mut self, s: usize, step: StepAnswer) -> bool {
        let Some(active) = self.active[s].as_mut() else { return false };
        let mut answer = active.busy.take().map(|(_, so_far)| so_far).unwrap_or_default();
        answer.tables.extend(step.answer.tables);
        answer.error = step.answer.error;
        match step.blocked_rest {
            Some(rest) if self.semantics == Semantics::IsolationTester => {
                active.busy = Some((rest, answer));
                true
            }
            _ => {
                active.answer = Some(answer);
                false
            }
        }
    }

    /// Cancels the step session `s` runs: the server cancels a running one; a step refused busy is
    /// not sent again, and its busy error is its answer.
    async fn cancel(&mut self, s: usize) -> Result<(), Halt> {
        if let Some(active) = self.active[s].as_mut()
            && active.handle.is_none()
            && let Some((_, answer)) = active.busy.take()
        {
            active.answer = Some(answer);
            return Ok(());
        }
        B::cancel(&mut self.controls[self.node[s]], self.ids[s]).await?;
        Ok(())
    }

    /// isolationtester's `step_has_blocker`: an annotation not yet satisfied.
    fn has_blocker(&self, permutation: &Permutation, p: usize) -> bool {
        permutation.steps[p].blockers.iter().enumerate().any(|(j, blocker)| match blocker {
            Blocker::Once => false,
            Blocker::Step { step, .. } => {
                self.active[step.session].as_ref().is_some_and(|a| permutation.steps[a.pstep].step == *step)
            }
            Blocker::Notices { step, .. } => self.total_notices[step.session] < self.targets[p][j],
        })
    }

    fn check_interrupted(&self) -> Result<(), Halt> {
        if self.interrupted.load(Ordering::Relaxed) { Err(Halt::Stopped(INTERRUPTED.to_owned())) } else { Ok(()) }
    }

    /// After the run stopped: cancels what still runs, rolls every session back and runs the
    /// teardowns, reporting no event (isolationtester would have exited). The spec's teardown runs
    /// on a fresh connection when the control connection fails it without a server error (lost).
    /// Returns the teardowns that failed.
    async fn clean_up(&mut self) -> Vec<String> {
        for s in 0..self.active.len() {
            let Some(active) = self.active[s].take() else { continue };
            let Some(handle) = active.handle else { continue };
            let _ = B::cancel(&mut self.controls[self.node[s]], self.ids[s]).await;
            if let Ok((conn, _)) = tokio::time::timeout(Duration::from_secs(10), handle).await {
                self.sessions[s].conn = Some(conn);
            }
        }
        let mut not_cleaned = Vec::new();
        for s in 0..self.sessions.len() {
            let _ = self.sessions[s].exec("ROLLBACK").await;
            self.sessions[s].inbox.take();
            let Some(sql) = &self.spec.sessions[s].teardown else { continue };
            if let Some(error) = self.sessions[s].exec(sql).await.and_then(|a| a.error) {
                not_cleaned.push(stopped_message(&Part::SessionTeardown(self.spec.sessions[s].name.clone()), &error));
            }
            self.sessions[s].inbox.take();
        }
        if let Some(sql) = &self.spec.teardown {
            let mut error = exec_control::<B>(&mut self.controls[0], sql).await.error;
            if error.as_ref().is_some_and(|e| e.code.is_none()) {
                error = match B::connect(&self.urls[0], "teardown").await {
                    Ok(mut fresh) => {
                        let error = exec_control::<B>(&mut fresh, sql).await.error;
                        B::close(fresh).await;
                        error
                    }
                    Err(err) => Some(B::step_error(&err)),
                };
            }
            if let Some(error) = error {
                not_cleaned.push(stopped_message(&Part::Teardown, &error));
            }
        }
        not_cleaned
    }

    async fn close(self) {
        for control in self.controls {
            B::close(control).await;
        }
        for session in self.sessions {
            if let Some(conn) = session.conn {
                B::close(conn).await;
            }
        }
    }
}

/// What isolationtester prints on stderr when a setup fails (`PQerrorMessage`'s first line).
fn stopped_message(part: &Part, error: &StepError) -> String {
    let what = match part {
        Part::Setup => "setup failed".to_owned(),
        Part::SessionSetup(s) => format!("setup of session {s} failed"),
        Part::SessionTeardown(s) => format!("teardown of session {s} failed"),
        Part::Teardown => "teardown failed".to_owned(),
    };
    format!("{what}: {}:  {}", error.severity, error.message)
}
