//! The outcome's `failover` part, for a run through a PostgreSQL URL with several hosts (a Patroni
//! cluster): did the primary change during the run, how long no write succeeded, and how many
//! acknowledged increments the new primary does not have.
//!
//! With asynchronous replication a primary acknowledges a commit before any replica has it; if it dies
//! then, the promoted replica never gets it, and the old primary's copy is rewound away when it rejoins.
//! The run's own accounting is the instrument: every acknowledged increment bumped the row's version
//! once, so a version count below `acknowledged` on the new primary is acknowledged writes lost, at
//! least that many (an in-doubt increment that committed may hide one more). With synchronous
//! replication (`synchronous_mode`) none may be: `acknowledged <= actual <= acknowledged + in_doubt`.
//!
//! The client-seen gap is the longest stretch without an acknowledged increment, from the live counts
//! ([`Progress`]) read every [`SAMPLE_EVERY`]: its precision. The figures never depend on those
//! samples otherwise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::outcome::Outcome;
use super::progress::{Progress, ProgressSnapshot};
use crate::db::{Database, HostState};

/// How often the live counts are read for the gap.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// What a failover did to a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = FailoverSchema))]
pub struct Failover {
    /// Whether the primary changed during the run (another timeline, or another host of the URL).
    pub failed_over: bool,
    /// The primary's timeline when the run started; it grows by one with each promotion.
    pub timeline_before: Option<i64>,
    /// The timeline after the run, on the primary then; `null` when it could not be read.
    pub timeline_after: Option<i64>,
    /// Which host of the URL (from 1) was the primary when the run started.
    pub host_before: Option<usize>,
    /// Which host of the URL (from 1) was the primary when the run ended.
    pub host_after: Option<usize>,
    /// The longest time during the run in which no increment was acknowledged (the client-seen write
    /// gap), in milliseconds, to within 5 ms.
    pub write_gap_ms: f64,
    /// Increments that failed in that gap.
    pub failed_in_gap: u64,
    /// Increments in doubt from that gap (their commit's answer was lost).
    pub in_doubt_in_gap: u64,
    /// Acknowledged increments missing from the row on the primary after the run, at least (an in-doubt
    /// one that committed may hide one more each); `null` when the counter could not be read.
    pub acknowledged_lost: Option<u64>,
}

/// Watches a run through a URL with several hosts; started before the workers, finished with the outcome.
pub(super) struct FailoverWatch {
    db: Database,
    timeline_before: Option<i64>,
    host_before: Option<usize>,
    sampler: tokio::task::JoinHandle<Gap>,
    done: Arc<tokio::sync::Notify>,
}

impl FailoverWatch {
    /// Starts watching when `db` is a URL with several hosts (or a `target_session_attrs`); `None` otherwise.
    pub(super) async fn start(db: &Database, progress: &Arc<Progress>) -> Option<Self> {
        let host_before = serving(db.host_state()?);
        let timeline_before = db.timeline().await.ok().flatten();
        let done = Arc::new(tokio::sync::Notify::new());
        let sampler = tokio::spawn(sample(progress.clone(), done.clone()));
        Some(Self { db: db.clone(), timeline_before, host_before, sampler, done })
    }

    /// The failover part of `outcome`, the run being over.
    pub(super) async fn finish(self, outcome: &Outcome) -> Failover {
        self.done.notify_one();
        let gap = self.sampler.await.unwrap_or_default();
        let timeline_after = self.db.timeline().await.ok().flatten();
        let host_after = self.db.host_state().and_then(serving);
        let failed_over = timeline_after.is_some_and(|after| Some(after) != self.timeline_before)
            || (host_after.is_some() && host_after != self.host_before);
        // The version count fell short of `acknowledged` by this much: `foreign_writes` is negative
        // exactly then (see the outcome's accounting).
        let acknowledged_lost = outcome.actual.map(|_| u64::try_from(-outcome.foreign_writes).unwrap_or(0));
        Failover {
            failed_over,
            timeline_before: self.timeline_before,
            timeline_after,
            host_before: self.host_before,
            host_after,
            write_gap_ms: (gap.longest.as_secs_f64() * 1e4).round() / 10.0,
            failed_in_gap: gap.failed,
            in_doubt_in_gap: gap.in_doubt,
            acknowledged_lost,
        }
    }
}

/// Host `n` of the URL from 1, when one serves.
fn serving(state: HostState) -> Option<usize> {
    match state {
        HostState::Serving(n) => Some(n + 1),
        HostState::NoPrimary { .. } => None,
    }
}

/// The longest stretch without an acknowledged increment, and what failed or went in doubt in it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Gap {
    pub(super) longest: Duration,
    pub(super) failed: u64,
    pub(super) in_doubt: u64,
}

/// Follows the counts from the first acknowledged increment on.
#[derive(Debug, Default)]
pub(super) struct GapTracker {
    /// When the acknowledged count last grew, and the counts of the sample before: what failed in the
    /// same sample as the last acknowledgement (a primary killed mid-sample) belongs to the gap.
    last_ack: Option<(Instant, ProgressSnapshot)>,
    /// The acknowledged count at the last growth.
    acknowledged: u64,
    previous: Option<ProgressSnapshot>,
    gap: Gap,
}

impl GapTracker {
    /// The counts as read at `at`.
    pub(super) fn observe(&mut self, at: Instant, now: &ProgressSnapshot) {
        if now.acknowledged > self.acknowledged {
            if self.last_ack.is_some() {
                self.close_gap(at, now);
            }
            let baseline = self.previous.take().unwrap_or_else(|| now.clone());
            self.last_ack = Some((at, baseline));
            self.acknowledged = now.acknowledged;
        }
        self.previous = Some(now.clone());
    }

    /// The stretch since the last acknowledged increment, ending at `at`, if it is the longest yet.
    fn close_gap(&mut self, at: Instant, now: &ProgressSnapshot) {
        let Some((since, then)) = &self.last_ack else { return };
        let length = at.saturating_duration_since(*since);
        if length > self.gap.longest {
            self.gap = Gap {
                longest: length,
                failed: now.failed.saturating_sub(then.failed),
                in_doubt: now.in_doubt.saturating_sub(then.in_doubt),
            };
        }
    }

    /// The gap, a run that ended without acknowledging again included.
    pub(super) fn finish(mut self, at: Instant, now: &ProgressSnapshot) -> Gap {
        self.close_gap(at, now);
        self.gap
    }
}

async fn sample(progress: Arc<Progress>, done: Arc<tokio::sync::Notify>) -> Gap {
    let mut tracker = GapTracker::default();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => tracker.observe(Instant::now(), &progress.snapshot()),
            () = done.notified() => return tracker.finish(Instant::now(), &progress.snapshot()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(acknowledged: u64, failed: u64, in_doubt: u64) -> ProgressSnapshot {
        ProgressSnapshot {
            acknowledged,
            refused: 0,
            failed,
            in_doubt,
            attempts: 0,
            retries: 0,
            errors: Default::default(),
        }
    }

    #[test]
    fn the_gap_is_the_longest_stretch_without_an_acknowledgement_and_what_failed_in_it() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut tracker = GapTracker::default();
        // Nothing acknowledged yet: setup time is no gap.
        tracker.observe(at(0), &counts(0, 0, 0));
        tracker.observe(at(500), &counts(0, 0, 0));
        tracker.observe(at(505), &counts(3, 0, 0));
        tracker.observe(at(510), &counts(8, 0, 0));
        // The primary dies: 8 in doubt (one worker's last answer came in the same sample), 2 failed,
        // nothing acknowledged for 3 s.
        tracker.observe(at(515), &counts(9, 0, 8));
        tracker.observe(at(2000), &counts(9, 2, 8));
        tracker.observe(at(3510), &counts(10, 2, 8));
        // A shorter stall later does not replace it.
        tracker.observe(at(4000), &counts(11, 3, 8));
        let gap = tracker.finish(at(4010), &counts(11, 3, 8));
        assert_eq!(gap, Gap { longest: Duration::from_millis(2995), failed: 2, in_doubt: 8 });
    }

    #[test]
    fn a_run_that_never_acknowledged_again_ends_in_its_gap() {
        let t0 = Instant::now();
        let mut tracker = GapTracker::default();
        tracker.observe(t0, &counts(4, 0, 0));
        tracker.observe(t0 + Duration::from_millis(5), &counts(5, 0, 0));
        tracker.observe(t0 + Duration::from_millis(100), &counts(5, 0, 4));
        let gap = tracker.finish(t0 + Duration::from_millis(905), &counts(5, 20, 4));
        assert_eq!(gap, Gap { longest: Duration::from_millis(900), failed: 20, in_doubt: 4 });
    }
}
