//! `GET /experiments/{id}/events`: the run as Server-Sent Events, from a task of its own that sends
//! `progress` (at most ten a second, only when it changed), each `result` and `trace` as it comes
//! (a spec run's one `result`, the whole spec's, when it has run: its permutations share their
//! sessions' connections, as isolationtester's do, so none is final before the last), and at the end `error` (a failed run's problem) and `end` (the final run view). A client that
//! connects to a finished run gets what there is and `end` at once. The task ends when the client goes
//! (its channel closes).
//!
//! The stream only reads the run: it must never change it, and a slow client must never hold the run
//! up.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use utoipa::ToSchema;

use super::run::{Run, RunState};

/// How often progress may be sent.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub type EventStream = Sse<axum::response::sse::KeepAliveStream<ReceiverStream<Result<Event, Infallible>>>>;

/// The event stream of `run`.
pub fn stream(run: Arc<Run>) -> EventStream {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(feed(run, tx));
    Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// One event of the stream; `data` is JSON: the progress array (`progress`), one outcome (`result`),
/// one strategy's trace (`trace`), a problem (`error`) or the final run view (`end`).
#[derive(Debug, ToSchema)]
pub struct ServerSentEvent {
    #[schema(pattern = "^(progress|result|trace|error|end)$")]
    event: &'static str,
    data: String,
}

impl ServerSentEvent {
    fn new(event: &'static str, data: &impl Serialize) -> Self {
        Self { event, data: serde_json::to_string(data).unwrap_or_else(|_| "null".to_owned()) }
    }
}

impl From<ServerSentEvent> for Event {
    fn from(sse: ServerSentEvent) -> Self {
        Event::default().event(sse.event).data(sse.data)
    }
}

fn event(name: &'static str, data: &impl Serialize) -> Result<Event, Infallible> {
    Ok(ServerSentEvent::new(name, data).into())
}

/// Sends the run's events until its end, or until the client has gone.
async fn feed(run: Arc<Run>, tx: mpsc::Sender<Result<Event, Infallible>>) {
    let mut changed = run.subscribe();
    let (mut results, mut traces) = (0, 0);
    let mut spec_sent = false;
    let mut last_progress = None;
    loop {
        // Marked seen before reading, so a change made while reading wakes the next wait.
        changed.borrow_and_update();
        let news = run.news(results, traces);
        let progress = run.progress();
        if last_progress.as_ref() != Some(&progress) {
            if tx.send(event("progress", &progress)).await.is_err() {
                return;
            }
            last_progress = Some(progress);
        }
        results += news.results.len();
        traces += news.traces.len();
        for outcome in &news.results {
            if tx.send(event("result", outcome)).await.is_err() {
                return;
            }
        }
        for trace in &news.traces {
            if tx.send(event("trace", trace)).await.is_err() {
                return;
            }
        }
        if let (false, Some(spec)) = (spec_sent, &news.spec) {
            if tx.send(event("result", spec)).await.is_err() {
                return;
            }
            spec_sent = true;
        }
        if news.state.is_over() {
            if let (RunState::Failed, Some(problem)) = (news.state, &news.error) {
                let _ = tx.send(event("error", problem)).await;
            }
            let _ = tx.send(event("end", &run.view())).await;
            return;
        }
        // Woken by a change of the run, or by the clock for its counters (which change silently).
        tokio::select! {
            _ = changed.changed() => {}
            () = tokio::time::sleep(PROGRESS_EVERY) => {}
            () = tx.closed() => return,
        }
    }
}
