//! The table of live connections, and the one thing done across them: closing an idle connection to
//! make room for a new one at the cap: the oldest without a complete request head first (slow heads
//! cannot hold the cap; one with a head begun before one that has sent nothing), then the one kept
//! alive the longest. It never closes a busy connection (one
//! with a request in the service or a response on its way): whether a connection is idle, and where
//! it stands in that order, is its [`Activity`]'s say.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use super::activity::{Activity, ShedOrder};

/// A connection as it was accepted: its number in the accept order, and when.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    id: u64,
    at: Instant,
}

/// The live connections.
#[derive(Debug, Default)]
pub struct Registry {
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl Registry {
    fn live(&self) -> MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Numbers a connection just accepted. The accept loop calls it for every connection, in the
    /// order they are accepted: a connection's place in the shedding order is when it arrived, not
    /// when its task (which may start later than the next one's, or wait over the cap) registers it.
    pub fn arrive(&self) -> Arrival {
        Arrival { id: self.next_id.fetch_add(1, Ordering::Relaxed), at: Instant::now() }
    }

    /// A connection's activity from its arrival on; it leaves the table when the returned entry is
    /// dropped.
    pub fn register(self: &Arc<Self>, arrival: Arrival) -> Entry {
        let activity = Arc::new(Activity::new(arrival.id, arrival.at));
        self.live().insert(arrival.id, activity.clone());
        Entry { activity, registry: self.clone() }
    }

    /// Closes one idle connection: the oldest without a complete request head, or else the one kept
    /// alive the longest; false if every connection is busy.
    pub fn shed_one(&self) -> bool {
        let mut idle: Vec<(ShedOrder, Arc<Activity>)> =
            self.live().values().filter_map(|a| Some((a.shed_order()?, a.clone()))).collect();
        idle.sort_unstable_by_key(|(order, _)| *order);
        // A connection may turn busy between the scan and the shedding: try the next one then.
        idle.into_iter().any(|(_, activity)| activity.shed())
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.live().len()
    }
}

/// A connection's place in the [`Registry`].
pub struct Entry {
    pub activity: Arc<Activity>,
    registry: Arc<Registry>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.registry.live().remove(&self.activity.id());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::http::connections::activity::{Closed, IdleTimeouts};

    const TIMEOUTS: IdleTimeouts =
        IdleTimeouts { header_read: Duration::from_millis(100), keep_alive: Duration::from_millis(300) };

    #[tokio::test(start_paused = true)]
    async fn shedding_takes_the_oldest_connection_waiting_for_a_request_and_refuses_its_requests() {
        let registry = Arc::new(Registry::default());
        let oldest = registry.register(registry.arrive());
        tokio::time::advance(Duration::from_millis(10)).await;
        let busy = registry.register(registry.arrive());
        let _guard = busy.activity.begin_request();
        let newest = registry.register(registry.arrive());
        assert!(registry.shed_one());
        assert_eq!(oldest.activity.watch(TIMEOUTS).await, Closed::Shed);
        assert!(oldest.activity.begin_request().is_none());
        let _serving = newest.activity.begin_request().expect("the newest connection is not shed");
        assert!(!registry.shed_one(), "only busy or closing connections are left");
        drop(oldest);
        assert_eq!(registry.open(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn heads_in_progress_are_shed_oldest_first_before_kept_alive_ones_and_requests_never() {
        let registry = Arc::new(Registry::default());
        // The oldest of all: a request in the service, its head complete.
        let serving = registry.register(registry.arrive());
        let _request = serving.activity.begin_request().expect("not closing");
        // Then a connection kept alive after a response, idle the longest.
        let kept_alive = registry.register(registry.arrive());
        drop(kept_alive.activity.begin_request());
        kept_alive.activity.on_flushed();
        tokio::time::advance(Duration::from_millis(10)).await;
        // Then three slow heads accepted at one instant (their accept order decides), the first
        // bytes of two arriving later (a first request's head is timed from the accept), and,
        // accepted after them, a connection that has sent nothing yet.
        let heads: Vec<Entry> = (0..3).map(|_| registry.register(registry.arrive())).collect();
        heads[0].activity.on_read();
        tokio::time::advance(Duration::from_millis(10)).await;
        let silent = registry.register(registry.arrive());
        heads[2].activity.on_read();
        heads[1].activity.on_read();

        let names = ["kept alive", "head 0", "head 1", "head 2", "silent"];
        let idle = [&kept_alive, &heads[0], &heads[1], &heads[2], &silent];
        let mut order: Vec<&str> = Vec::new();
        while registry.shed_one() {
            // A connection marked for closing has no place in the order any more.
            let shed: Vec<&str> = idle
                .iter()
                .zip(names)
                .filter(|(entry, name)| entry.activity.shed_order().is_none() && !order.contains(name))
                .map(|(_, name)| name)
                .collect();
            assert_eq!(shed.len(), 1, "one connection per shedding: {shed:?}");
            order.extend(shed);
        }
        assert_eq!(order, ["head 0", "head 1", "head 2", "silent", "kept alive"]);
        assert!(serving.activity.begin_request().is_some(), "the request in the service was shed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_keeps_the_place_of_its_accept_however_late_it_is_registered() {
        let registry = Arc::new(Registry::default());
        // Accepted over the cap: numbered at once, registered once a slot is free.
        let waited = registry.arrive();
        tokio::time::advance(Duration::from_millis(10)).await;
        let next = registry.register(registry.arrive());
        let waited = registry.register(waited);
        assert!(registry.shed_one());
        assert!(waited.activity.shed_order().is_none(), "the connection accepted first was not shed first");
        assert!(next.activity.shed_order().is_some());
    }
}
