//! One connection's life: hyper serves it over the tracked socket, each request is counted as busy
//! on the connection's [`Activity`] until hyper has taken its response body whole, and the watchdog
//! closes the connection when a deadline passes or it is shed. It never cuts a request being served:
//! the watchdog has no deadline while the service holds one.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tower::ServiceExt;

use super::Shared;
use super::activity::{Activity, RequestGuard};
use super::io::TrackedIo;
use super::registry::Entry;
use crate::http::error::ApiError;
use crate::http::metrics;

/// Serves one connection until it closes, its watchdog closes it, or the shutdown drains it (the
/// watcher then asks hyper to close it after the request in flight, if any). `read_before` is what was
/// read of it before (the head of a connection admitted over the cap). `entry` is its place in
/// the registry (numbered when it was accepted: the shedding order is the accept order), and `_slot`
/// its place under the cap, given back last, once the socket is closed.
pub(super) async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    read_before: Vec<u8>,
    entry: Entry,
    _slot: OwnedSemaphorePermit,
    shutdown: Watcher,
) {
    metrics::connections_open(shared.registry.open());
    let activity = entry.activity.clone();
    let service = TrackedService { router: shared.router.clone(), activity: activity.clone() };
    let io = TokioIo::new(TrackedIo::new(stream, read_before, activity.clone()));
    let connection = pin!(shutdown.watch(shared.builder.serve_connection(io, service)));
    tokio::select! {
        result = connection => {
            if let Err(err) = result {
                tracing::debug!(%err, "connection closed on an error");
            }
        }
        closed = activity.watch(shared.timeouts) => {
            tracing::debug!(reason = closed.as_str(), "closing an idle connection");
            metrics::connection_closed(closed.as_str());
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
