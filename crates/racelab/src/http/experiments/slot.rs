//! A run's place among those under way: taken when a run is registered, given back when it is dropped
//! (when the run ends, or its task dies), so the count of runs under way can never leak. It must never
//! be cloned: one place, one run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A run's place among those under way; dropping it gives the place back.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A place counted in `under_way`, if fewer than `max` are taken.
    pub fn take(under_way: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        under_way
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| Slot(under_way.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
