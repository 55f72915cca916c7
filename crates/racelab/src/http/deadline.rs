//! When a request must be answered by, so a handler can answer shortly before the request timeout
//! would, with what it did (an experiment's counts so far) instead of the timeout's bare 503.
//!
//! The instant is set where the request enters the timeout layer, so time spent before the handler
//! runs (waiting for a connection, for the post) is counted as the timeout counts it.
//!
//! It only records and reads the instant: it must never answer a request itself.

use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::Instant;

tokio::task_local! {
    static TIMEOUT_AT: Instant;
}

/// Middleware, layered just outside the timeout layer: records when the timeout will fire.
pub async fn record(request: Request, next: Next, timeout: Duration) -> Response {
    TIMEOUT_AT.scope(Instant::now() + timeout, next.run(request)).await
}

/// When a handler should have answered: a little before the timeout fires (if both are due at once,
/// the timeout layer takes the handler's answer, which it polls first).
pub fn answer_by(timeout: Duration) -> Instant {
    let fires = TIMEOUT_AT.try_with(|at| *at).unwrap_or_else(|_| Instant::now() + timeout);
    fires - (timeout / 10).min(Duration::from_millis(250))
}
