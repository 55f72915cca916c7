//! Live counts a watcher reads while the workers run, and the stop it may ask for. The outcome's
//! figures never come from these counts (each worker keeps its own), so a watcher cannot skew them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::fate::Fate;
use super::stats::{count_by_kind, kind_index};
use crate::error::ErrorKind;

/// Counts shared by the workers while they run, for whoever watches (a request that times out, a
/// progress bar, a page): what has been done so far. The outcome's figures come from each worker's
/// own `WorkerStats`, not from these.
#[derive(Debug, Default)]
pub struct Progress {
    /// Set by whoever watches to end the run early: each worker stops before its next increment (or
    /// retry), and what it did not make is counted as `stopped`.
    stop: std::sync::atomic::AtomicBool,
    acknowledged: AtomicU64,
    refused: AtomicU64,
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
    /// A workload's operations the business rule refused so far (absent for the counter, whose
    /// increments are never refused).
    #[serde(skip_serializing_if = "is_zero")]
    pub refused: u64,
    pub failed: u64,
    pub in_doubt: u64,
    pub attempts: u64,
    /// Attempts run again after a conflict so far.
    pub retries: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
}

impl Progress {
    pub(crate) fn record(&self, fate: Fate, attempts: u32) {
        self.attempts.fetch_add(u64::from(attempts), Ordering::Relaxed);
        match fate {
            Fate::Acknowledged => self.acknowledged.fetch_add(1, Ordering::Relaxed),
            Fate::Refused => self.refused.fetch_add(1, Ordering::Relaxed),
            Fate::InDoubt => self.in_doubt.fetch_add(1, Ordering::Relaxed),
            Fate::Failed(kind) => {
                self.errors[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn fail_unattempted(&self, kind: ErrorKind, n: u64) {
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
            refused: self.refused.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            in_doubt: self.in_doubt.load(Ordering::Relaxed),
            attempts: self.attempts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            errors: count_by_kind(&errors),
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
