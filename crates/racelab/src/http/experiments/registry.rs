//! The runs the server knows: at most `--max-runs` under way at once (a 429 past that), finished ones
//! kept for `--run-retention` and at most `--max-kept-runs` of them, so memory stays bounded however
//! many runs clients start.
//!
//! It must never keep a run past its retention, nor let more than `--max-runs` be under way.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::run::Run;
use super::slot::Slot;
use crate::http::config::RunLimits;
use crate::http::error::ApiError;

/// Every run under way or kept.
pub struct Registry {
    limits: RunLimits,
    /// In the order they were started.
    runs: Mutex<Vec<Arc<Run>>>,
    /// Runs under way: counted by [`Slot`]s, so a run that ends (or whose task dies) gives its back.
    under_way: Arc<AtomicUsize>,
    /// One anomalies or spec run at a time: the suite creates and drops the same table each run, and a
    /// spec's setup makes tables of its own choosing, which another spec (or the suite) may share.
    pub anomalies: tokio::sync::Mutex<()>,
}

impl Registry {
    pub fn new(limits: RunLimits) -> Self {
        Self { limits, runs: Mutex::default(), under_way: Arc::default(), anomalies: tokio::sync::Mutex::new(()) }
    }

    pub fn limits(&self) -> RunLimits {
        self.limits
    }

    /// A place for one more run, or 429 when `max_runs` are under way.
    pub fn reserve(&self) -> Result<Slot, ApiError> {
        let max = self.limits.max_runs;
        Slot::take(&self.under_way, max).ok_or(ApiError::TooManyRuns { max })
    }

    fn table(&self) -> MutexGuard<'_, Vec<Arc<Run>>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `run`, forgetting runs past their retention.
    pub fn insert(&self, run: Arc<Run>) {
        let mut runs = self.table();
        self.forget_old(&mut runs);
        runs.push(run);
    }

    /// The run with this id, if it is under way or still kept.
    pub fn get(&self, id: &str) -> Option<Arc<Run>> {
        let mut runs = self.table();
        self.forget_old(&mut runs);
        runs.iter().find(|run| run.id == id).cloned()
    }

    /// Every run under way, for stopping them at shutdown.
    pub fn under_way(&self) -> Vec<Arc<Run>> {
        self.table().iter().filter(|run| !run.state().is_over()).cloned().collect()
    }

    /// Drops finished runs older than the retention, then the oldest finished ones past `max_kept`.
    fn forget_old(&self, runs: &mut Vec<Arc<Run>>) {
        let now = Instant::now();
        runs.retain(|run| run.ended().is_none_or(|ended| now.duration_since(ended) < self.limits.retention));
        let mut finished = runs.iter().filter(|run| run.ended().is_some()).count();
        runs.retain(|run| {
            if finished > self.limits.max_kept && run.ended().is_some() {
                finished -= 1;
                return false;
            }
            true
        });
    }
}
