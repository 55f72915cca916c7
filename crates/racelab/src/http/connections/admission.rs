//! A connection accepted over the cap. It must first send a whole request head: only a request
//! takes the place of an idle connection (the oldest without a complete head, or else the one kept
//! alive the longest), so clients that connect and send their head slowly, or not at all, and
//! reconnect whenever they are closed, cannot push each other, nor anyone, out of the cap: they wait
//! here, at most [`HEAD_WAIT`], and are closed without an answer. Every connection being busy, a
//! request is answered 503 problem+json and closed. It never closes a busy connection to make room,
//! and never closes a refused one before the client has read the answer.
//!
//! The waiting connections have a registry of their own: when more arrive than the overflow holds,
//! the oldest waiting one is closed for the new one (`serve`), so a flood of slow heads cannot keep a
//! client with a request from being heard.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::activity::{Activity, IdleTimeouts};
use super::connection::serve_connection;
use super::io::{LINGER, closing_response};
use super::registry::{Arrival, Entry};
use super::{Shared, warn_at_most_every_second};
use crate::http::error::ApiError;
use crate::http::metrics;
use crate::http::request_limits::MAX_HEAD_BYTES;

/// How long a connection over the cap waits for the idle connection closed for it to be gone.
const ADMISSION_WAIT: Duration = Duration::from_millis(500);

/// How long a connection over the cap may take to send its request head (less if the header
/// timeout is shorter): a client sends it as soon as it is connected.
pub const HEAD_WAIT: Duration = Duration::from_secs(1);

/// Reads the request head (`sent` is what was read of it at the accept), then closes an idle
/// connection and takes its place, or answers 503 and closes. `arrival` is when it was accepted
/// (its place in the shedding order once served); `waiting` its place among those waiting for their
/// head (see [`wait_for_head`]); `overflow_place` its place among those over the cap, held until it
/// is served or refused.
pub(super) async fn admit_over_cap(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    sent: Vec<u8>,
    arrival: Arrival,
    waiting: Option<Entry>,
    overflow_place: OwnedSemaphorePermit,
    shutdown: Watcher,
) {
    let head = match waiting {
        None => Some(sent),
        Some(waiting) => {
            let wait = HEAD_WAIT.min(shared.timeouts.header_read);
            tokio::select! {
                head = read_head(&mut stream, sent, &waiting.activity) => head,
                closed = waiting.activity.watch(IdleTimeouts { header_read: wait, keep_alive: wait }) => {
                    metrics::connection_closed(closed.as_str());
                    return;
                }
            }
            // A request from here on: `waiting` is dropped, it is no longer one of those closed
            // for a newer arrival.
        }
    };
    let Some(head) = head else { return };
    if shared.registry.shed_one()
        && let Ok(Ok(slot)) = tokio::time::timeout(ADMISSION_WAIT, shared.slots.clone().acquire_owned()).await
    {
        drop(overflow_place);
        let entry = shared.registry.register(arrival);
        return serve_connection(shared, stream, head, entry, slot, shutdown).await;
    }
    warn_at_most_every_second(&format!(
        "all {} connections are busy with requests: answering new connections 503",
        shared.max_connections
    ));
    metrics::connection_closed("refused");
    refuse(stream, shared.max_connections).await;
}

/// The place among those waiting for their head of a connection over the cap that has sent `sent`
/// so far; `None` if that is a whole head already (a request, which never waits among them). Taken
/// by the accept loop, in the order of arrival, so that the oldest is closed first, even one whose
/// task has not run yet.
pub(super) fn wait_for_head(shared: &Arc<Shared>, arrival: Arrival, sent: &[u8]) -> Option<Entry> {
    if head_ended(sent, 0) {
        return None;
    }
    let waiting = shared.waiting.register(arrival);
    if !sent.is_empty() {
        waiting.activity.on_read();
    }
    Some(waiting)
}

/// What the client has sent by the time its connection is accepted, read without waiting: a client
/// with a request sends its head at once, and under a flood it is often all there by then, so the
/// request never waits among the slow heads.
pub(super) fn sent_already(stream: &TcpStream) -> Vec<u8> {
    let mut sent = vec![0u8; 4096];
    let n = stream.try_read(&mut sent).unwrap_or(0);
    sent.truncate(n);
    sent
}

/// Reads on from `head` (telling `activity` once bytes are in) until the end of a request head (an empty line), or as much as hyper would
/// read of one (then hyper answers 431); `None` if the client closes first or the connection fails.
async fn read_head(stream: &mut TcpStream, mut head: Vec<u8>, activity: &Activity) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    loop {
        // A head begun is closed before a connection that has sent nothing, when room is needed.
        if !head.is_empty() {
            activity.on_read();
        }
        let n = stream.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        // The empty line may straddle two reads.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if head_ended(&head, from) || head.len() >= MAX_HEAD_BYTES {
            return Some(head);
        }
    }
}

/// Whether `bytes` hold the empty line that ends a request head, looking from `from` on.
fn head_ended(bytes: &[u8], from: usize) -> bool {
    let tail = bytes.get(from..).unwrap_or_default();
    // httparse, hyper's parser, also ends a head at a bare "\n\n".
    tail.windows(4).any(|w| w == b"\r\n\r\n") || tail.windows(2).any(|w| w == b"\n\n")
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
