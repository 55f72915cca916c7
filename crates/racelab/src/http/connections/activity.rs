//! What each connection is doing, as the socket, the service and the watchdog see it, and the
//! table of live connections the cap sheds idle ones from.
//!
//! A connection is *busy* from the moment a request reaches the service until its response body has
//! been handed to hyper whole; otherwise it is *idle*, in one of three ways, each with its deadline:
//! - waiting for the first request since the connection was accepted: the header timeout;
//! - kept alive after a response, nothing received since: the keep-alive timeout;
//! - the first bytes of the next request received, not the whole head: the header timeout, from
//!   those first bytes.
//!
//! An idle connection past its deadline, or shed to make room, is closed without an answer; a busy
//! one is never closed here (the request timeout bounds it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The two idle timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleTimeouts {
    pub header_read: Duration,
    pub keep_alive: Duration,
}

/// Why a connection was closed by the server while idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// No complete request head within the header timeout.
    HeaderTimeout,
    /// Kept alive, unused, for the keep-alive timeout.
    KeepAliveTimeout,
    /// Idle the longest when a new connection needed its place.
    Shed,
}

impl Closed {
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::KeepAliveTimeout => "keep_alive_timeout",
            Closed::Shed => "shed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingFirstRequest,
    KeptAlive,
    ReadingHead,
    Busy,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// When the phase began.
    since: Instant,
    in_flight: u32,
    /// A response's last bytes were handed to hyper and may not have reached the socket yet.
    flush_owed: bool,
    closing: Option<Closed>,
}

/// One connection's activity, shared by its socket, its service and its watchdog.
#[derive(Debug)]
pub struct Activity {
    id: u64,
    state: Mutex<State>,
    /// Wakes the watchdog when the deadline may have moved.
    changed: Notify,
}

impl Activity {
    fn new(id: u64) -> Self {
        let state = State {
            phase: Phase::AwaitingFirstRequest,
            since: Instant::now(),
            in_flight: 0,
            flush_owed: false,
            closing: None,
        };
        Self { id, state: Mutex::new(state), changed: Notify::new() }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: on a kept-alive connection, the next request has begun.
    pub fn on_read(&self) {
        let mut state = self.state();
        if state.phase == Phase::KeptAlive {
            state.phase = Phase::ReadingHead;
            state.since = Instant::now();
            drop(state);
            self.changed.notify_one();
        }
    }

    /// A request reached the service; `None` if the connection is being closed (then it must not be
    /// served: the watchdog drops it at once).
    pub fn begin_request(self: &Arc<Self>) -> Option<RequestGuard> {
        let mut state = self.state();
        if state.closing.is_some() {
            return None;
        }
        state.in_flight += 1;
        state.phase = Phase::Busy;
        drop(state);
        self.changed.notify_one();
        Some(RequestGuard(self.clone()))
    }

    fn end_request(&self) {
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.phase = Phase::KeptAlive;
            state.since = Instant::now();
            state.flush_owed = true;
        }
        drop(state);
        self.changed.notify_one();
    }

    /// Everything written so far reached the socket.
    pub fn on_flushed(&self) {
        let mut state = self.state();
        if state.in_flight == 0 {
            state.flush_owed = false;
        }
    }

    /// Whether bytes written now can only be hyper's own answer to a request it could not parse: no
    /// request is in the service and no response of ours is still on its way to the socket.
    pub fn nothing_of_ours_to_write(&self) -> bool {
        let state = self.state();
        state.in_flight == 0 && !state.flush_owed
    }

    /// Marks an idle connection for closing; false if it is busy or already closing.
    fn shed(&self) -> bool {
        let mut state = self.state();
        if state.in_flight > 0 || state.closing.is_some() {
            return false;
        }
        state.closing = Some(Closed::Shed);
        drop(state);
        self.changed.notify_one();
        true
    }

    /// Since when the connection is idle, if it is (and not already closing).
    fn idle_since(&self) -> Option<Instant> {
        let state = self.state();
        (state.in_flight == 0 && state.closing.is_none()).then_some(state.since)
    }

    /// The idle deadline, `Ok(None)` while busy, `Err` once closing.
    fn deadline(&self, timeouts: IdleTimeouts) -> Result<Option<(Instant, Closed)>, Closed> {
        let state = self.state();
        if let Some(closed) = state.closing {
            return Err(closed);
        }
        Ok(match state.phase {
            Phase::Busy => None,
            Phase::AwaitingFirstRequest | Phase::ReadingHead => {
                Some((state.since + timeouts.header_read, Closed::HeaderTimeout))
            }
            Phase::KeptAlive => Some((state.since + timeouts.keep_alive, Closed::KeepAliveTimeout)),
        })
    }

    /// Marks the connection closing if its deadline has passed (checked again under the lock: a
    /// request may have begun since the timer was set).
    fn expire(&self, timeouts: IdleTimeouts) -> Option<Closed> {
        let (at, why) = self.deadline(timeouts).ok().flatten()?;
        let mut state = self.state();
        if Instant::now() < at || state.closing.is_some() || state.in_flight > 0 {
            return None;
        }
        state.closing = Some(why);
        Some(why)
    }

    /// Completes when the connection must be closed: an idle deadline passed, or it was shed.
    pub async fn watch(&self, timeouts: IdleTimeouts) -> Closed {
        loop {
            // `notify_one` keeps a permit when nobody waits: a change between reading the deadline
            // and waiting is not lost.
            let changed = self.changed.notified();
            match self.deadline(timeouts) {
                Err(closed) => return closed,
                Ok(None) => changed.await,
                Ok(Some((at, _))) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {
                            if let Some(closed) = self.expire(timeouts) {
                                return closed;
                            }
                        }
                        () = changed => {}
                    }
                }
            }
        }
    }
}

/// Held while a request is served, and by its response body until hyper has taken all of it.
#[derive(Debug)]
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end_request();
    }
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
        self.registry.live().remove(&self.activity.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: IdleTimeouts =
        IdleTimeouts { header_read: Duration::from_millis(100), keep_alive: Duration::from_millis(300) };

    #[tokio::test(start_paused = true)]
    async fn a_connection_waiting_for_its_first_request_is_closed_after_the_header_timeout() {
        let registry = Arc::new(Registry::default());
        let entry = registry.register();
        let started = Instant::now();
        assert_eq!(entry.activity.watch(TIMEOUTS).await, Closed::HeaderTimeout);
        assert_eq!(started.elapsed(), TIMEOUTS.header_read);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_is_never_closed_and_its_keep_alive_starts_when_the_response_is_done() {
        let registry = Arc::new(Registry::default());
        let entry = registry.register();
        let guard = entry.activity.begin_request().expect("not closing");
        let watch = entry.activity.watch(TIMEOUTS);
        tokio::pin!(watch);
        assert!(tokio::time::timeout(Duration::from_secs(60), &mut watch).await.is_err(), "closed while busy");
        assert!(!registry.shed_longest_idle(), "shed while busy");
        drop(guard);
        let idle_at = Instant::now();
        assert_eq!(watch.await, Closed::KeepAliveTimeout);
        assert_eq!(idle_at.elapsed(), TIMEOUTS.keep_alive);
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_request_started_gets_the_header_timeout_from_its_first_bytes() {
        let registry = Arc::new(Registry::default());
        let entry = registry.register();
        drop(entry.activity.begin_request());
        tokio::time::advance(Duration::from_millis(250)).await;
        entry.activity.on_read();
        let first_byte = Instant::now();
        assert_eq!(entry.activity.watch(TIMEOUTS).await, Closed::HeaderTimeout);
        assert_eq!(first_byte.elapsed(), TIMEOUTS.header_read);
    }

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
