//! What each connection is doing, as the socket, the service and the watchdog see it, and the
//! watchdog that closes it when its phase's deadline passes.
//!
//! A connection is *busy* from the moment a whole request head has arrived (hyper hands the request to
//! the service) until the last byte of its response has been written to the socket, and *idle*
//! otherwise. A head that has begun but is not complete is not yet a request: nothing has been asked,
//! nothing would be lost by closing it, and a slowloris (a head sent a byte at a time) is exactly that.
//! Each phase has its deadline:
//! - idle, waiting for the first request since the connection was accepted: the header timeout;
//! - idle, the first bytes of a request received, not the whole head: the header timeout (from the
//!   accept for a connection's first request, from those first bytes for the next ones);
//! - idle, kept alive after a response, nothing received since: the keep-alive timeout;
//! - busy, the request in the service: none here (the request timeout bounds it);
//! - busy, the response handed to hyper but not all written yet (a client reading slowly, or not
//!   at all): the keep-alive timeout, from the last bytes written, so a client that reads, however
//!   slowly, is never cut, and one that stops reading is closed like one that stops sending.
//!
//! Only an idle connection is shed to make room: a busy one would lose a request or a response cut
//! short. Among idle ones, a connection without a complete head goes first (one with a head begun
//! before one that has sent nothing), the oldest first (see `Standing`). A connection past its deadline, or shed, is closed without an answer.

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
    /// Idle (no request in the service, no response on its way) when a new connection needed its
    /// place: the oldest without a complete request head, or else the one kept alive the longest.
    Shed,
    /// A response the client read nothing of for the keep-alive timeout.
    SendTimeout,
}

impl Closed {
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::KeepAliveTimeout => "keep_alive_timeout",
            Closed::Shed => "shed",
            Closed::SendTimeout => "send_timeout",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Accepted, no byte of a request yet.
    AwaitingFirstRequest,
    /// A response written whole, no byte of the next request yet.
    KeptAlive,
    /// Bytes of a request head received, not the whole head.
    ReadingHead,
    /// A request in the service, or its response body not yet taken whole by hyper.
    Serving,
    /// The response taken whole by hyper, its last bytes not yet written to the socket.
    Sending,
}

impl Phase {
    /// Where a connection in this phase stands when one must be shed; `None` if it is busy.
    fn standing(self) -> Option<Standing> {
        match self {
            Phase::ReadingHead => Some(Standing::HeadBegun),
            Phase::AwaitingFirstRequest => Some(Standing::Silent),
            Phase::KeptAlive => Some(Standing::KeptAlive),
            Phase::Serving | Phase::Sending => None,
        }
    }
}

/// Which idle connections are shed first: the lower, the sooner. Those without a complete request
/// head come first: nothing has been asked on them, and a slowloris is one of them however many
/// bytes it has sent. The oldest of a standing goes first: a real client sends its head in one
/// packet, so the connection that has waited longest for the end of its head is the least likely
/// to be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Standing {
    /// The first bytes of a request head in, not the whole head: a client that sends its head
    /// slowly, or stopped.
    HeadBegun,
    /// Accepted, nothing sent yet: possibly a client (a browser's preconnection) about to send.
    Silent,
    /// Kept alive after a response: a client that has been served and will likely ask again (a load
    /// balancer's pooled connection). The one kept alive the longest goes first.
    KeptAlive,
}

/// A connection's place in the shedding order: its standing, then since when it has been in it, then
/// its accept order (ties of the clock).
pub(super) type ShedOrder = (Standing, Instant, u64);

#[derive(Debug)]
struct State {
    phase: Phase,
    /// When the phase began (for `Sending`: when bytes were last written).
    since: Instant,
    in_flight: u32,
    /// Bytes arrived while a response was being sent: the next request began (pipelined).
    next_request_begun: bool,
    closing: Option<Closed>,
    /// The timeouts the watchdog applies, once it has started.
    timeouts: Option<IdleTimeouts>,
    /// When the watchdog looks again (`None`: it has not looked yet). A change that moves the deadline
    /// later need not wake it: it looks then, and sleeps on.
    watched: Option<Instant>,
}

impl State {
    /// The phase's deadline and what passing it means; `None` while the service has the request.
    fn deadline(&self, timeouts: IdleTimeouts) -> Option<(Instant, Closed)> {
        match self.phase {
            Phase::Serving => None,
            Phase::AwaitingFirstRequest | Phase::ReadingHead => {
                Some((self.since + timeouts.header_read, Closed::HeaderTimeout))
            }
            Phase::KeptAlive => Some((self.since + timeouts.keep_alive, Closed::KeepAliveTimeout)),
            Phase::Sending => Some((self.since + timeouts.keep_alive, Closed::SendTimeout)),
        }
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.since = Instant::now();
    }

    /// Whether the watchdog must be woken to see this state: its deadline comes before the watchdog
    /// looks again. (A wake-up per request made the connection's task yield and wake another worker
    /// thread: two more context switches per request, measured.)
    fn watchdog_must_look(&self) -> bool {
        let Some(timeouts) = self.timeouts else { return true };
        match (self.deadline(timeouts), self.watched) {
            (None, _) => false,
            (Some((at, _)), Some(watched)) => at < watched,
            (Some(_), None) => true,
        }
    }
}

/// One connection's activity, shared by its socket, its service and its watchdog.
#[derive(Debug)]
pub struct Activity {
    id: u64,
    state: Mutex<State>,
    /// Wakes the watchdog when the deadline comes sooner than the one it sleeps toward, or the
    /// connection is shed.
    changed: Notify,
    /// How many times the watchdog has looked at the deadline (for the test that counts its wake-ups).
    #[cfg(test)]
    looks: std::sync::atomic::AtomicUsize,
}

impl Activity {
    /// The activity of connection `id`, accepted at `accepted` (its first head is due from then).
    pub(super) fn new(id: u64, accepted: Instant) -> Self {
        let state = State {
            phase: Phase::AwaitingFirstRequest,
            since: accepted,
            in_flight: 0,
            next_request_begun: false,
            closing: None,
            timeouts: None,
            watched: None,
        };
        Self {
            id,
            state: Mutex::new(state),
            changed: Notify::new(),
            #[cfg(test)]
            looks: Default::default(),
        }
    }

    /// The connection's key in the registry.
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: a request has begun, unless one is being served (its body) or answered.
    pub fn on_read(&self) {
        let mut state = self.state();
        match state.phase {
            // The header timeout of a connection's first request runs from the accept: same deadline.
            Phase::AwaitingFirstRequest => state.phase = Phase::ReadingHead,
            Phase::KeptAlive => state.enter(Phase::ReadingHead),
            Phase::Sending => state.next_request_begun = true,
            Phase::ReadingHead | Phase::Serving => return,
        }
        self.wake_watchdog_if_sooner(state);
    }

    /// A request reached the service; `None` if the connection is being closed (then it must not be
    /// served: the watchdog drops it at once).
    pub fn begin_request(self: &Arc<Self>) -> Option<RequestGuard> {
        let mut state = self.state();
        if state.closing.is_some() {
            return None;
        }
        state.in_flight += 1;
        state.next_request_begun = false;
        state.enter(Phase::Serving);
        self.wake_watchdog_if_sooner(state);
        Some(RequestGuard(self.clone()))
    }

    /// hyper has taken the response whole: what is left is writing it out.
    fn end_request(&self) {
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.enter(Phase::Sending);
        }
        self.wake_watchdog_if_sooner(state);
    }

    /// Bytes were written to the socket: a response being sent made progress.
    pub fn on_written(&self) {
        let mut state = self.state();
        if state.phase == Phase::Sending {
            // A later deadline: the watchdog finds it when the earlier one fires, no need to wake it.
            state.since = Instant::now();
        }
    }

    /// Everything written so far reached the socket: a response being sent is sent whole.
    pub fn on_flushed(&self) {
        let mut state = self.state();
        if state.phase != Phase::Sending {
            return;
        }
        let next = if state.next_request_begun { Phase::ReadingHead } else { Phase::KeptAlive };
        state.enter(next);
        self.wake_watchdog_if_sooner(state);
    }

    fn wake_watchdog_if_sooner(&self, state: MutexGuard<'_, State>) {
        let wake = state.watchdog_must_look();
        drop(state);
        if wake {
            self.changed.notify_one();
        }
    }

    /// Whether bytes written now can only be hyper's own answer to a request it could not parse: no
    /// request is in the service and no response of ours is still on its way to the socket.
    pub fn nothing_of_ours_to_write(&self) -> bool {
        !matches!(self.state().phase, Phase::Serving | Phase::Sending)
    }

    /// Marks an idle connection for closing; false if it is busy or already closing.
    pub(super) fn shed(&self) -> bool {
        let mut state = self.state();
        if state.phase.standing().is_none() || state.closing.is_some() {
            return false;
        }
        state.closing = Some(Closed::Shed);
        drop(state);
        self.changed.notify_one();
        true
    }

    /// Where the connection stands in the shedding order, if it is idle (and not already closing).
    /// For a head in progress, `since` is when the connection began waiting for it: the accept, or the
    /// first bytes of a kept-alive connection's next request.
    pub(super) fn shed_order(&self) -> Option<ShedOrder> {
        let state = self.state();
        let standing = state.phase.standing().filter(|_| state.closing.is_none())?;
        Some((standing, state.since, self.id))
    }

    /// When the watchdog looks again: at the deadline, but no later than the shorter timeout from now
    /// (noted, so that a change moving the deadline later, as every request does, need not wake it);
    /// `Err` once closing.
    fn next_look(&self, timeouts: IdleTimeouts) -> Result<Instant, Closed> {
        #[cfg(test)]
        self.looks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut state = self.state();
        if let Some(closed) = state.closing {
            return Err(closed);
        }
        let at_the_latest = Instant::now() + timeouts.header_read.min(timeouts.keep_alive);
        let at = state.deadline(timeouts).map_or(at_the_latest, |(deadline, _)| deadline.min(at_the_latest));
        state.timeouts = Some(timeouts);
        state.watched = Some(at);
        Ok(at)
    }

    /// Marks the connection closing if its deadline has passed (read again under the lock: a request
    /// may have begun, or bytes been written, since the timer was set).
    fn expire(&self, timeouts: IdleTimeouts) -> Option<Closed> {
        let mut state = self.state();
        if state.closing.is_some() {
            return None;
        }
        let (at, why) = state.deadline(timeouts)?;
        if Instant::now() < at {
            return None;
        }
        state.closing = Some(why);
        Some(why)
    }

    /// Completes when the connection must be closed: a deadline passed, or it was shed.
    pub async fn watch(&self, timeouts: IdleTimeouts) -> Closed {
        loop {
            // `notify_one` keeps a permit when nobody waits: a change between reading the deadline
            // and waiting is not lost.
            let changed = self.changed.notified();
            let at = match self.next_look(timeouts) {
                Err(closed) => return closed,
                Ok(at) => at,
            };
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

/// Held while a request is served, and by its response body until hyper has taken all of it.
#[derive(Debug)]
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::connections::registry::Registry;

    const TIMEOUTS: IdleTimeouts =
        IdleTimeouts { header_read: Duration::from_millis(100), keep_alive: Duration::from_millis(300) };

    #[tokio::test(start_paused = true)]
    async fn a_connection_waiting_for_its_first_request_is_closed_after_the_header_timeout() {
        let registry = Arc::new(Registry::default());
        let entry = registry.register(registry.arrive());
        let started = Instant::now();
        assert_eq!(entry.activity.watch(TIMEOUTS).await, Closed::HeaderTimeout);
        assert_eq!(started.elapsed(), TIMEOUTS.header_read);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_is_never_closed_and_its_keep_alive_starts_when_the_response_is_done() {
        let registry = Arc::new(Registry::default());
        let entry = registry.register(registry.arrive());
        let guard = entry.activity.begin_request().expect("not closing");
        let watch = entry.activity.watch(TIMEOUTS);
        tokio::pin!(watch);
        assert!(tokio::time::timeout(Duration::from_secs(60), &mut watch).await.is_err(), "closed while busy");
        assert!(!registry.shed_one(), "shed while busy");
        drop(guard);
        entry.activity.on_flushed();
        let idle_at = Instant::now();
        assert_eq!(watch.await, Closed::KeepAliveTimeout);
        assert_eq!(idle_at.elapsed(), TIMEOUTS.keep_alive);
    }

    // Each state change of a request woke the watchdog, which runs in the connection's own task: the
    // task yielded and woke another worker thread, four times a request. Only a deadline sooner than
    // the one it sleeps toward wakes it now, and it still closes the connection on time.
    #[tokio::test(start_paused = true)]
    async fn requests_in_a_row_do_not_wake_the_watchdog() {
        use std::sync::atomic::Ordering;
        let registry = Arc::new(Registry::default());
        let entry = registry.register(registry.arrive());
        let activity = entry.activity.clone();
        let watch = activity.watch(TIMEOUTS);
        tokio::pin!(watch);
        for n in 0..50 {
            if n > 0 {
                activity.on_read();
            }
            let guard = activity.begin_request().expect("not closing");
            drop(guard);
            activity.on_flushed();
            // Let the watchdog run, as the connection's task would between requests.
            assert!(tokio::time::timeout(Duration::from_millis(1), &mut watch).await.is_err(), "closed while in use");
        }
        let looks = activity.looks.load(Ordering::SeqCst);
        assert!(looks <= 3, "the watchdog looked {looks} times for 50 requests");
        let idle_at = Instant::now();
        assert_eq!(watch.await, Closed::KeepAliveTimeout);
        assert!(idle_at.elapsed() <= TIMEOUTS.keep_alive, "closed {:?} after the last response", idle_at.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_request_started_gets_the_header_timeout_from_its_first_bytes() {
        let registry = Arc::new(Registry::default());
        let entry = registry.register(registry.arrive());
        drop(entry.activity.begin_request());
        entry.activity.on_flushed();
        tokio::time::advance(Duration::from_millis(250)).await;
        entry.activity.on_read();
        let first_byte = Instant::now();
        assert_eq!(entry.activity.watch(TIMEOUTS).await, Closed::HeaderTimeout);
        assert_eq!(first_byte.elapsed(), TIMEOUTS.header_read);
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_being_written_is_busy_however_long_the_client_takes_to_read_it() {
        let registry = Arc::new(Registry::default());
        let entry = registry.register(registry.arrive());
        // hyper has taken the response whole; the socket has not taken it all yet.
        drop(entry.activity.begin_request().expect("not closing"));
        assert!(!registry.shed_one(), "shed while its response is being written");
        assert!(!entry.activity.nothing_of_ours_to_write());
        let watch = entry.activity.watch(TIMEOUTS);
        tokio::pin!(watch);
        // A slow reader: some bytes written every 200 ms, for 10 times the keep-alive timeout.
        for _ in 0..15 {
            assert!(tokio::time::timeout(Duration::from_millis(200), &mut watch).await.is_err(), "closed mid-response");
            entry.activity.on_written();
        }
        assert!(!registry.shed_one(), "shed while its response is being written");
        entry.activity.on_flushed();
        let written = Instant::now();
        assert!(entry.activity.nothing_of_ours_to_write());
        assert_eq!(watch.await, Closed::KeepAliveTimeout);
        assert_eq!(written.elapsed(), TIMEOUTS.keep_alive);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_its_response_is_closed_a_keep_alive_timeout_after_the_last_write() {
        let registry = Arc::new(Registry::default());
        let entry = registry.register(registry.arrive());
        drop(entry.activity.begin_request().expect("not closing"));
        tokio::time::advance(Duration::from_millis(250)).await;
        entry.activity.on_written();
        let last_write = Instant::now();
        assert_eq!(entry.activity.watch(TIMEOUTS).await, Closed::SendTimeout);
        assert_eq!(last_write.elapsed(), TIMEOUTS.keep_alive);
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_in_progress_is_not_yet_a_request_and_is_bounded_by_the_header_timeout() {
        let registry = Arc::new(Registry::default());
        let first = registry.register(registry.arrive());
        let accepted = Instant::now();
        tokio::time::advance(Duration::from_millis(50)).await;
        first.activity.on_read();
        // A slow head is shed before a kept-alive connection, in the order of its accept.
        assert_eq!(first.activity.shed_order(), Some((Standing::HeadBegun, accepted, first.activity.id())));
        // The first request's head is due a header timeout after the accept, not after its first byte.
        assert_eq!(first.activity.watch(TIMEOUTS).await, Closed::HeaderTimeout);
        assert_eq!(accepted.elapsed(), TIMEOUTS.header_read);

        // Bytes of the next request while a response is still being sent (pipelining): busy until
        // the response is sent, then reading that request's head, not kept alive.
        let pipelined = registry.register(registry.arrive());
        drop(pipelined.activity.begin_request().expect("not closing"));
        pipelined.activity.on_read();
        tokio::time::advance(Duration::from_millis(50)).await;
        assert_eq!(pipelined.activity.shed_order(), None, "sheddable with its response on its way");
        pipelined.activity.on_flushed();
        let sent = Instant::now();
        assert_eq!(pipelined.activity.shed_order(), Some((Standing::HeadBegun, sent, pipelined.activity.id())));
        assert_eq!(pipelined.activity.watch(TIMEOUTS).await, Closed::HeaderTimeout);
        assert_eq!(sent.elapsed(), TIMEOUTS.header_read);
    }
}
