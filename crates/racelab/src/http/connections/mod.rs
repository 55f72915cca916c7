//! The accept loop, in place of `axum::serve`: that one sets no timer (so hyper's header timeout
//! never fires), caps nothing, and sleeps a second on every failed `accept`, which is how 300 idle
//! sockets under `ulimit -n 256` left `/health` unanswered. It must never close a busy connection
//! (from a complete request head to the last byte of its response) except at its own deadline.
//!
//! - **Idle timeouts** ([`activity`](crate::http::connections::activity)): a connection must send a whole request head within the header
//!   timeout (from its accept, or from the first bytes of a request on a kept-alive connection), and
//!   is closed after the keep-alive timeout without a request. A request being served is never cut
//!   here (the request timeout bounds it), nor a response being written while the client reads it,
//!   however slowly; one the client reads nothing of for the keep-alive timeout is.
//! - **A cap** ([`budget`](crate::http::connections::budget)), below the open-files limit less what the database pool and the process
//!   need, so `accept` never fails for lack of descriptors. At the cap, a new connection must first
//!   send a whole request head (`admission`): only a request takes the place of an idle connection
//!   (`registry`), the oldest whose request head is not complete (a head sent a byte a second is not
//!   yet a request, so slow heads cannot hold the cap), or else the one kept alive the longest. An
//!   idle connection costs its client nothing but a reconnect, a refused request costs an answer.
//!   A connection over the cap that sends no whole head within a second is closed unanswered, and
//!   when more wait than the overflow holds the oldest waiting is closed for the newest, so slow
//!   heads that reconnect as fast as they are closed push out neither each other nor a request.
//!   Only when every connection is busy is a request answered 503 problem+json (with
//!   `Retry-After`) and closed.
//! - If `accept` fails for lack of descriptors all the same (some other part of the process took
//!   them), an idle connection is shed and `accept` retried at once.
//! - **Graceful shutdown**: on the signal the listener closes, idle connections close, busy ones
//!   finish their request and close; `serve` returns when all are closed.
//!
//! Who does what, and why the rest is ours (hyper 1.12, hyper-util 0.1.21, tower 0.5.3):
//!
//! | Behaviour | Done by | Why no crate does it |
//! |---|---|---|
//! | Serve HTTP/1.1 on a socket | hyper `http1::Builder::serve_connection` | |
//! | Head size and field count limits | hyper `max_buf_size`, `max_headers` | |
//! | Graceful shutdown of every connection | hyper-util `server::graceful::GracefulShutdown` | |
//! | Header-read timeout | ours (`activity`) | hyper's `header_read_timeout` (with `timer(TokioTimer)`) restarts when a kept-alive connection goes idle, so it also bounds the keep-alive wait: the 10 s header timeout would close kept-alive connections long before 75 s |
//! | Keep-alive timeout | ours (`activity`) | hyper's `keep_alive` only turns keep-alive on or off; hyper has no idle timeout |
//! | Close a client that stops reading a response | ours (`activity`, `io`) | hyper has no write timeout; tower's and tower-http's `timeout` bound the handler, not the writing of its body |
//! | Cap fitted to the open-files limit | ours (`budget`, a `tokio` semaphore) | tower's `limit::ConcurrencyLimit` counts requests in a service, not sockets: an idle kept-alive connection holds a descriptor with no request, and over the limit it waits instead of refusing |
//! | Shed an idle connection at the cap for a request (slow heads first, oldest first) | ours (`registry`, `admission`) | tower's `load_shed` refuses the new request; it cannot close another, idle, connection, nor tell a request from a slow head |
//! | 503 problem+json when every connection is busy | ours (`admission`) | `load_shed` answers inside a connection already accepted past the cap, as an error hyper turns into a close without an answer |
//! | Shed and retry when `accept` fails with EMFILE | ours (`serve`) | hyper-util has no accept loop; `axum::serve` sleeps a second |
//! | hyper's bare 400, 414 and 431 as problem+json | ours (`io`) | hyper writes them itself, with an empty body, and has no hook to change them |
//!
//! hyper-util's `server::conn::auto` is not used: it adds HTTP/2, which this service never served,
//! and `io` rewrites hyper's answers as HTTP/1 bytes.

pub mod activity;
mod admission;
pub mod budget;
mod connection;
mod io;
mod registry;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use self::activity::IdleTimeouts;
use self::admission::{admit_over_cap, sent_already, wait_for_head};
use self::budget::OVERFLOW;
use self::connection::serve_connection;
use self::registry::Registry;
use super::metrics;
use super::request_limits::{MAX_HEAD_BYTES, MAX_HEADER_FIELDS};

/// How long the accept loop waits for a connection over the cap, closed for a new one, to be gone.
const OVERFLOW_WAIT: Duration = Duration::from_millis(200);

/// The connection settings of `racelab serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// A whole request head must arrive within this.
    pub header_read_timeout: Duration,
    /// A kept-alive connection without a request is closed after this.
    pub keep_alive_timeout: Duration,
    /// Client connections at once (lowered to fit the open-files limit).
    pub max_connections: usize,
}

impl ConnectionSettings {
    /// 10 s for a request head: a real client sends it in one packet, a slowloris gets little time.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// 75 s (nginx's default): longer than the 60 s idle timeout of common load balancers (AWS ALB,
    /// GCP), so the balancer, not the server, closes an idle connection, and never sends a request on
    /// one the server is closing at that moment.
    pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(75);
    /// 1024 connections, lowered to what the open-files limit allows.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

    pub fn idle_timeouts(&self) -> IdleTimeouts {
        IdleTimeouts { header_read: self.header_read_timeout, keep_alive: self.keep_alive_timeout }
    }
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            keep_alive_timeout: Self::DEFAULT_KEEP_ALIVE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// What every connection task shares.
struct Shared {
    router: Router,
    builder: http1::Builder,
    timeouts: IdleTimeouts,
    max_connections: usize,
    registry: Arc<Registry>,
    /// One permit per connection the cap allows.
    slots: Arc<Semaphore>,
    /// Connections over the cap still waiting for their request head (`admission`).
    waiting: Arc<Registry>,
}

/// Serves `router` on `listener` until `shutdown` completes, then closes idle connections, lets busy
/// ones finish, and returns when none is left. `max_connections` is the cap already fitted to the
/// open-files limit.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: IdleTimeouts,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // HTTP/1.1 only, as `axum::serve` served it here. No timer is given to hyper: the idle timeouts
    // are the watchdog's (see the table above).
    let mut builder = http1::Builder::new();
    // hyper's own limit on a request head: above ours (`http::request_limits`), so ours answer first.
    builder.max_buf_size(MAX_HEAD_BYTES);
    builder.max_headers(MAX_HEADER_FIELDS);
    let shared = Arc::new(Shared {
        router,
        builder,
        timeouts,
        max_connections,
        registry: Arc::new(Registry::default()),
        slots: Arc::new(Semaphore::new(max_connections)),
        waiting: Arc::new(Registry::default()),
    });
    let graceful = GracefulShutdown::new();
    let overflow = Arc::new(Semaphore::new(OVERFLOW));
    let mut tasks = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                // An answer goes out as soon as it is written: Nagle's algorithm would hold a small
                // one back while an earlier segment is unacknowledged (a pipelining or slow client).
                let _ = stream.set_nodelay(true);
                // Numbered here, not in the task: tasks may start out of order, and the oldest
                // connection without a request must be the first shed.
                let arrival = shared.registry.arrive();
                if let Ok(slot) = shared.slots.clone().try_acquire_owned() {
                    let entry = shared.registry.register(arrival);
                    tasks.spawn(serve_connection(shared.clone(), stream, Vec::new(), entry, slot, graceful.watcher()));
                } else {
                    // Over the cap: a whole head sent already is a request, which must not wait
                    // among the slow heads.
                    let sent = sent_already(&stream);
                    let Some(place) = overflow_place(&shared, &overflow).await else {
                        // More arrivals at once than the overflow holds, each with its request
                        // head already: no descriptor to spare for an answer.
                        metrics::connection_closed("overflow");
                        continue;
                    };
                    let waiting = wait_for_head(&shared, arrival, &sent);
                    let watcher = graceful.watcher();
                    tasks.spawn(admit_over_cap(shared.clone(), stream, sent, arrival, waiting, place, watcher));
                }
            }
            Err(err) if out_of_descriptors(&err) => {
                warn_at_most_every_second(&format!(
                    "cannot accept a connection: {err}; closing an idle connection to make room"
                ));
                // The shed connection's task closes its socket soon after: give it that time, rather
                // than shedding another on the next failure.
                let pause = if shared.registry.shed_one() { 5 } else { 50 };
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            // The client gave up before it was accepted.
            Err(err) if is_connection_error(&err) => {}
            Err(err) => {
                warn_at_most_every_second(&format!("cannot accept a connection: {err}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    // Every task holds a watcher: this returns once all have ended.
    graceful.shutdown().await;
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// A place among the connections over the cap. When they are all taken, the oldest of them still
/// waiting for its request head is closed for the new one, so that slow heads arriving faster than
/// they time out cannot keep a request out; the accept loop waits for its place (briefly: that task
/// only has to drop its socket), which also slows down the flood.
async fn overflow_place(shared: &Shared, overflow: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    if let Ok(place) = overflow.clone().try_acquire_owned() {
        return Some(place);
    }
    if !shared.waiting.shed_one() {
        return None;
    }
    tokio::time::timeout(OVERFLOW_WAIT, overflow.clone().acquire_owned()).await.ok()?.ok()
}

/// `accept` failed because the process (EMFILE) or the system (ENFILE) has no descriptor left.
fn out_of_descriptors(err: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        matches!(Errno::from_io_error(err), Some(Errno::MFILE | Errno::NFILE))
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        false
    }
}

fn is_connection_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(err.kind(), ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset)
}

/// A warning that a flood would repeat for every connection: logged once a second at most.
fn warn_at_most_every_second(message: &str) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if LAST.swap(now, Ordering::Relaxed) != now {
        tracing::warn!("{message}");
    }
}
