//! Prometheus metrics: `GET /metrics`, and a middleware that counts requests and times them by
//! route (`MatchedPath`, so `/test-db/2th?workers=8` and `?workers=2` share one series).
//!
//! The recorder is process-global (the `metrics` macros write to it), so it is installed at most once
//! per process, however many applications a test binary starts; they share its handle.
//!
//! It must never label a series with anything a client chooses (a raw URI, a value): only the matched
//! route, method and status.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Request latency buckets, in seconds: from a `/health` to a 32 x 1000 experiment.
const LATENCY_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Likes per combined batch: from a post liked alone to the largest batch (`combining::MAX_BATCH`).
const BATCH_SIZE_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The process's recorder handle, installing the recorder on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = builder
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full("racelab_like_batch_size".into()), &BATCH_SIZE_BUCKETS)
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will stay empty");
            }
            describe();
            handle
        })
        .clone()
}

/// The `# HELP` line of every metric the service writes.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("http_requests_total", "Requests answered, by method, route and status");
    describe_histogram!("http_request_duration_seconds", "Time to answer a request, by method, route and status");
    describe_gauge!("http_connections_open", "Client connections open now");
    describe_counter!("http_connections_closed_total", "Connections the server closed on its own, by reason");
    describe_counter!("racelab_increments_total", "Increments acknowledged by the experiments, by strategy");
    describe_counter!("racelab_lost_updates_total", "Updates the experiments lost, by strategy");
    describe_counter!("racelab_experiment_runs_total", "Runs of /experiments that ended, by kind and state");
    describe_counter!("racelab_likes_total", "Likes made by POST /posts/{pk}/likes, by route and keyed (true, false)");
    describe_histogram!(
        "racelab_like_batch_size",
        "Likes made per transaction by write-combining (serve --combine-likes), by route"
    );
    describe_counter!(
        "racelab_idempotent_replays_total",
        "Keyed likes answered from the stored answer instead of made again, by route"
    );
}

/// The Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn render(State(handle): State<PrometheusHandle>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}

/// Counts and times every routed request.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route.unwrap_or_else(|| "unmatched".to_owned())),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

/// Client connections open now.
pub fn connections_open(count: usize) {
    metrics::gauge!("http_connections_open").set(count as f64);
}

/// A connection the server closed on its own: `header_timeout`, `keep_alive_timeout`, `send_timeout`
/// (a response the client read nothing of for the keep-alive timeout), `shed` (idle, to make room at
/// the cap), `refused` (503 at the cap) or `overflow` (closed unanswered).
pub fn connection_closed(reason: &'static str) {
    metrics::counter!("http_connections_closed_total", "reason" => reason).increment(1);
}
