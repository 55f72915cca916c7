//! The table of live connections, and the one thing done across them: closing the connection idle
//! the longest to make room for a new one at the cap. It never closes a busy connection (one with a
//! request begun or a response on its way): whether a connection is idle is its [`Activity`]'s say.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use super::activity::Activity;

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

    /// A new connection's activity; it leaves the table when the returned entry is dropped.
    pub fn register(self: &Arc<Self>) -> Entry {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(id));
        self.live().insert(id, activity.clone());
        Entry { activity, registry: self.clone() }
    }

    /// Closes the connection idle the longest; false if every connection is busy.
    pub fn shed_longest_idle(&self) -> bool {
        let mut idle: Vec<(Instant, Arc<Activity>)> =
            self.live().values().filter_map(|a| Some((a.idle_since()?, a.clone()))).collect();
        idle.sort_by_key(|(since, _)| *since);
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
    async fn shedding_takes_the_connection_idle_the_longest_and_refuses_its_requests() {
        let registry = Arc::new(Registry::default());
        let oldest = registry.register();
        tokio::time::advance(Duration::from_millis(10)).await;
        let busy = registry.register();
        let _guard = busy.activity.begin_request();
        let newest = registry.register();
        assert!(registry.shed_longest_idle());
        assert_eq!(oldest.activity.watch(TIMEOUTS).await, Closed::Shed);
        assert!(oldest.activity.begin_request().is_none());
        let _serving = newest.activity.begin_request().expect("the newest connection is not shed");
        assert!(!registry.shed_longest_idle(), "only busy or closing connections are left");
        drop(oldest);
        assert_eq!(registry.open(), 2);
    }
}
