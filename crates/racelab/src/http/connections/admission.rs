//! A connection accepted over the cap: it takes the place of an idle connection (the oldest without
//! a complete request head, or else the one kept alive the longest), or, every connection being
//! busy, is answered 503 problem+json and closed. It never closes a busy connection to make room,
//! and never closes a refused one before the client has read the answer.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::connection::serve_connection;
use super::io::{LINGER, closing_response};
use super::registry::Arrival;
use super::{Shared, warn_at_most_every_second};
use crate::http::error::ApiError;
use crate::http::metrics;

/// How long a connection over the cap waits for the idle connection closed for it to be gone.
const ADMISSION_WAIT: Duration = Duration::from_millis(500);

/// Closes an idle connection and takes its place, or answers 503 and closes. `arrival` is when it
/// was accepted (its place in the shedding order once served); `waiting` is its place among those
/// over the cap, held until it is served or refused.
pub(super) async fn admit_over_cap(
    shared: Arc<Shared>,
    stream: TcpStream,
    arrival: Arrival,
    waiting: OwnedSemaphorePermit,
    shutdown: Watcher,
) {
    if shared.registry.shed_one()
        && let Ok(Ok(slot)) = tokio::time::timeout(ADMISSION_WAIT, shared.slots.clone().acquire_owned()).await
    {
        drop(waiting);
        let entry = shared.registry.register(arrival);
        return serve_connection(shared, stream, entry, slot, shutdown).await;
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
