//! Each worker's own counts and latency histogram, merged per node and per experiment once the
//! workers are done: nothing is shared while they run, and recording never allocates.

use std::collections::BTreeMap;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::fate::Fate;
use crate::error::ErrorKind;

/// One worker's counts, merged into its node's and the experiment's at the end (no shared state while
/// running).
pub(crate) struct WorkerStats {
    pub(crate) acknowledged: u64,
    /// Operations the business rule refused (never the counter's).
    pub(crate) refused: u64,
    pub(crate) failed: u64,
    pub(crate) in_doubt: u64,
    pub(crate) errors: [u64; ErrorKind::ALL.len()],
    pub(crate) retried: [u64; ErrorKind::ALL.len()],
    pub(crate) attempts: u64,
    pub(crate) measured_acknowledged: u64,
    pub(crate) latency_us: Histogram<u64>,
    pub(crate) started: Instant,
    pub(crate) measure_from: Instant,
    pub(crate) finished: Instant,
}

impl WorkerStats {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Self {
            acknowledged: 0,
            refused: 0,
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

    pub(crate) fn record(&mut self, began: Instant, ended: Instant, attempts: u32, fate: Fate) {
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
            Fate::Refused => self.refused += 1,
            Fate::InDoubt => self.in_doubt += 1,
        }
        if measured {
            let micros = u64::try_from((ended - began).as_micros()).unwrap_or(u64::MAX).max(1);
            self.latency_us.saturating_record(micros);
        }
    }

    /// Counts `n` increments that were never attempted as failures of `kind`.
    pub(crate) fn fail_unattempted(&mut self, kind: ErrorKind, n: u64) {
        self.failed += n;
        self.errors[kind_index(kind)] += n;
    }

    pub(crate) fn merge(&mut self, other: WorkerStats) {
        self.acknowledged += other.acknowledged;
        self.refused += other.refused;
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

    pub(crate) fn expected(&self) -> u64 {
        self.acknowledged + self.refused + self.failed + self.in_doubt
    }
}

/// One node's counts, before they become a [`NodeOutcome`].
pub(crate) struct NodeStats {
    pub(crate) node: usize,
    pub(crate) workers: usize,
    pub(crate) stats: WorkerStats,
}

pub(crate) fn kind_index(kind: ErrorKind) -> usize {
    ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(ErrorKind::ALL.len() - 1)
}

pub(crate) fn count_by_kind(counts: &[u64; ErrorKind::ALL.len()]) -> BTreeMap<ErrorKind, u64> {
    ErrorKind::ALL.into_iter().zip(*counts).filter(|(_, n)| *n > 0).collect()
}
