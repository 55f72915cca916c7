//! The accept loop and each connection's life, in place of `axum::serve`: that one sets no timer (so
//! hyper's header timeout never fires), caps nothing, and sleeps a second on every failed `accept`,
//! which is how 300 idle sockets under `ulimit -n 256` left `/health` unanswered.
//!
//! - **Idle timeouts** ([`activity`]): a connection must send a whole request head within the header
//!   timeout (from its accept, or from the first bytes of a request on a kept-alive connection), and
//!   is closed after the keep-alive timeout without a request. A request being served is never cut
//!   here (the request timeout bounds it), nor a response being written while the client reads it,
//!   however slowly; one the client reads nothing of for the keep-alive timeout is.
//! - **A cap** ([`budget`]), below the open-files limit less what the database pool and the process
//!   need, so `accept` never fails for lack of descriptors. At the cap, the connection idle the longest
//!   is closed to make room: an idle connection costs its client nothing but a reconnect, a refused
//!   request costs an answer. A connection is busy from the first byte of a request to the last byte
//!   of its response. Only when every connection is busy is the new one answered 503 problem+json
//!   (with `Retry-After`) and closed.
//! - If `accept` fails for lack of descriptors all the same (some other part of the process took
//!   them), an idle connection is shed and `accept` retried at once.
//! - **Graceful shutdown**: on the signal the listener closes, idle connections close, busy ones
//!   finish their request and close; `serve` returns when all are closed.

pub mod activity;
pub mod budget;
mod io;

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use self::activity::{Activity, IdleTimeouts, Registry, RequestGuard};
use self::budget::OVERFLOW;
use self::io::{LINGER, TrackedIo, closing_response};
use super::error::ApiError;
use super::metrics;
use super::request_limits::{MAX_HEAD_BYTES, MAX_HEADER_FIELDS};

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

/// How long a connection over the cap waits for the idle connection closed for it to be gone.
const ADMISSION_WAIT: Duration = Duration::from_millis(500);

/// What every connection task shares.
struct Shared {
    router: Router,
    builder: http1::Builder,
    timeouts: IdleTimeouts,
    max_connections: usize,
    registry: Arc<Registry>,
    /// One permit per connection the cap allows.
    slots: Arc<Semaphore>,
    draining: watch::Sender<bool>,
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
    // are the watchdog's (hyper's header timeout would also cut kept-alive connections).
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
        draining: watch::Sender::new(false),
    });
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
                if let Ok(slot) = shared.slots.clone().try_acquire_owned() {
                    tasks.spawn(serve_connection(shared.clone(), stream, slot));
                } else if let Ok(waiting) = overflow.clone().try_acquire_owned() {
                    tasks.spawn(admit_over_cap(shared.clone(), stream, waiting));
                } else {
                    // More arrivals at once than the overflow holds: no descriptor to spare for an answer.
                    metrics::connection_closed("overflow");
                }
            }
            Err(err) if out_of_descriptors(&err) => {
                warn_at_most_every_second(&format!(
                    "cannot accept a connection: {err}; closing an idle connection to make room"
                ));
                // The shed connection's task closes its socket soon after: give it that time, rather
                // than shedding another on the next failure.
                let pause = if shared.registry.shed_longest_idle() { 5 } else { 50 };
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
    shared.draining.send_replace(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// A connection over the cap: closes the connection idle the longest and takes its place, or, every
/// connection being busy, answers 503 and closes.
async fn admit_over_cap(shared: Arc<Shared>, stream: TcpStream, waiting: OwnedSemaphorePermit) {
    if shared.registry.shed_longest_idle()
        && let Ok(Ok(slot)) = tokio::time::timeout(ADMISSION_WAIT, shared.slots.clone().acquire_owned()).await
    {
        drop(waiting);
        return serve_connection(shared, stream, slot).await;
    }
    warn_at_most_every_second(&format!(
        "all {} connections are busy with requests: answering new connections 503",
        shared.max_connections
    ));
    metrics::connection_closed("refused");
    refuse(stream, shared.max_connections).await;
}

/// Answers 503 problem+json on a connection that is not served, and closes it once the client has
/// read it (a close with the client's request unread would reset the connection, answer and all).
async fn refuse(mut stream: TcpStream, max: usize) {
    let answer = closing_response(StatusCode::SERVICE_UNAVAILABLE, &ApiError::OverCapacity { max });
    let exchange = async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        let mut scratch = [0u8; 4096];
        while stream.read(&mut scratch).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(LINGER, exchange).await;
}

/// Serves one connection until it closes, its watchdog closes it, or the shutdown drains it.
async fn serve_connection(shared: Arc<Shared>, stream: TcpStream, _slot: OwnedSemaphorePermit) {
    let entry = shared.registry.register();
    metrics::connections_open(shared.registry.open());
    let activity = entry.activity.clone();
    let service = TrackedService { router: shared.router.clone(), activity: activity.clone() };
    let io = TokioIo::new(TrackedIo::new(stream, activity.clone()));
    let mut connection = pin!(shared.builder.serve_connection(io, service));
    let mut watchdog = pin!(activity.watch(shared.timeouts));
    let mut draining = shared.draining.subscribe();
    let mut graceful = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%err, "connection closed on an error");
                }
                break;
            }
            closed = &mut watchdog => {
                tracing::debug!(reason = closed.as_str(), "closing an idle connection");
                metrics::connection_closed(closed.as_str());
                break;
            }
            _ = draining.wait_for(|draining| *draining), if !graceful => {
                connection.as_mut().graceful_shutdown();
                graceful = true;
            }
        }
    }
    drop(entry);
    metrics::connections_open(shared.registry.open());
}

/// The router, with each request counted on its connection's activity until its response body has
/// been taken whole.
#[derive(Clone)]
struct TrackedService {
    router: Router,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for TrackedService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let guard = self.activity.begin_request();
        let router = self.router.clone();
        Box::pin(async move {
            let Some(guard) = guard else {
                // The connection timed out or was shed as this request arrived: it is being closed.
                let mut response = ApiError::Status(StatusCode::SERVICE_UNAVAILABLE).into_response();
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                return Ok(response.map(|body| TrackedBody { body, _guard: None }));
            };
            let response = router.oneshot(request.map(Body::new)).await.unwrap_or_else(|never| match never {});
            Ok(response.map(|body| TrackedBody { body, _guard: Some(guard) }))
        })
    }
}

/// A response body that keeps its request counted until hyper drops it (after its last frame).
struct TrackedBody {
    body: Body,
    _guard: Option<RequestGuard>,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
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
