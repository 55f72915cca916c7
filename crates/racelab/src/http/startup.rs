//! Building and running the service: `Application::build` binds (port 0 allowed, for tests),
//! `run_until_stopped` serves until ctrl-c or SIGTERM and then drains in-flight requests for at most
//! the grace period. The CLI, the tests and the benchmarks all start the service through this.
//!
//! It wires the parts together and must never hold a handler's logic.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower_http::LatencyUnit;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::config::HttpConfig;
use super::connections::budget::{BudgetError, ConnectionBudget};
use super::connections::{self, ConnectionSettings};
use super::error::{no_route, problems_only};
use super::openapi::{ApiDoc, DOCS_PATH, OPENAPI_PATH, with_limits};
use super::state::AppState;
use super::{
    deadline, experiments, health, html_policy, lab, likes, metrics, page, posts, redoc, request_limits, request_span,
};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Descriptors(#[from] BudgetError),
}

/// A bound, not yet serving, service.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    shutdown_grace: Duration,
    connections: ConnectionSettings,
    budget: ConnectionBudget,
}

impl Application {
    /// Binds the listener and prepares the state. Does not need the database: it is connected on
    /// first use (and tried once in the background as soon as the service runs).
    pub async fn build(config: HttpConfig) -> Result<Self, StartupError> {
        let budget = ConnectionBudget::new(config.connections.max_connections, config.database.max_connections)?;
        let listener =
            TcpListener::bind(config.bind).await.map_err(|source| StartupError::Bind { addr: config.bind, source })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind { addr: config.bind, source })?;
        let (shutdown_grace, connections) = (config.shutdown_grace, config.connections);
        let state = AppState::new(config, metrics::handle());
        Ok(Self { listener, addr, state, shutdown_grace, connections, budget })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until ctrl-c or SIGTERM, then drains.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish, for at most the grace
    /// period; new connections are refused from the signal on.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self { listener, addr, state, shutdown_grace, connections, budget } = self;
        tracing::info!(%addr, "listening on {addr}");
        let ConnectionSettings { header_read_timeout, keep_alive_timeout, .. } = connections;
        let connection_limits =
            format!("{budget}; header read timeout {header_read_timeout:?}, keep-alive timeout {keep_alive_timeout:?}");
        if budget.clamped() {
            tracing::warn!("{connection_limits}");
        } else {
            tracing::info!("{connection_limits}");
        }

        let background = tokio::spawn(background_tasks(state.clone()));
        let purge = tokio::spawn(likes::purge_expired_keys(state.clone()));
        // The drain deadline, set when the signal arrives: it bounds the drain and the pool's close.
        let deadline = Arc::new(OnceLock::<Instant>::new());
        let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<Instant>();
        let signal = {
            let deadline = deadline.clone();
            let runs = state.runs().clone();
            async move {
                shutdown.await;
                tracing::info!("shutdown signal received; draining in-flight requests (at most {shutdown_grace:?})");
                // Runs of /experiments end after the increments in flight (`stopped`), and with them
                // their event streams, which would otherwise hold the drain for the whole grace.
                for run in runs.under_way() {
                    run.stop();
                }
                let at = *deadline.get_or_init(|| Instant::now() + shutdown_grace);
                let _ = draining_tx.send(at);
            }
        };
        let server = connections::serve(
            listener,
            router(state.clone()),
            connections.idle_timeouts(),
            budget.max_connections,
            signal,
        );
        let drain_deadline = async move {
            match draining_rx.await {
                Ok(at) => tokio::time::sleep_until(at).await,
                Err(_) => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            result = server => result,
            () = drain_deadline => {
                tracing::warn!("in-flight requests did not finish within {shutdown_grace:?}; stopping anyway");
                Ok(())
            }
        };
        background.abort();
        purge.abort();
        if let Some(db) = state.connected_db() {
            // Closing waits for every checked-out connection, the experiments of timed-out requests'
            // (which run on in their own tasks) included: it gets what is left of the grace, no more.
            let remaining = deadline.get().map_or(shutdown_grace, |at| at.saturating_duration_since(Instant::now()));
            if tokio::time::timeout(remaining, db.close()).await.is_err() {
                tracing::warn!(
                    "database connections still in use when the shutdown grace ({shutdown_grace:?}) ran out; \
                     stopping without waiting for them"
                );
            }
        }
        tracing::info!("stopped");
        result
    }
}

/// Connects once at start (so the first request does not pay for it, and the log says at once whether
/// the database is there), and keeps the metrics recorder's memory bounded.
async fn background_tasks(state: AppState) {
    let _ = state.db().await;
    let mut upkeep = tokio::time::interval(Duration::from_secs(5));
    loop {
        upkeep.tick().await;
        state.metrics().run_upkeep();
    }
}

/// Completes on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Every route, documented ones through the OpenAPI router so the document lists exactly what is served.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(lab::routes())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(metrics::render))
        .merge(posts::routes())
        .merge(likes::routes())
        .merge(experiments::routes())
        .split_for_parts();
    let openapi = experiments::document(with_limits(openapi, &state.limits()), &state);
    let timeout = state.request_timeout();
    let api = api.with_state(state).merge(page::routes());
    // No validator badge: Swagger UI would load it from validator.swagger.io, with the document's URL.
    let swagger = SwaggerUi::new(DOCS_PATH).url(OPENAPI_PATH, openapi).config(Config::default().validator_url("none"));
    api.merge(swagger)
        .merge(redoc::routes())
        .fallback(no_route)
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        // When the timeout above will fire, for handlers that answer just before it with what they did.
        .layer(axum::middleware::from_fn(move |request: Request, next: Next| deadline::record(request, next, timeout)))
        .layer(axum::middleware::from_fn(request_limits::enforce))
        // A chunked body has no Content-Length for `enforce` to check: the extractors stop reading
        // at the same limit (a 413, which `problems_only` words).
        .layer(axum::extract::DefaultBodyLimit::max(request_limits::MAX_BODY_BYTES as usize))
        // Every error status leaves as problem+json, axum's own 404 and 405 and the timeout's 503 included.
        .layer(axum::middleware::from_fn(move |request: Request, next: Next| problems_only(request, next, timeout)))
        // Outside everything that makes an answer, so no page (the Swagger UI's included) goes without.
        .layer(axum::middleware::from_fn(html_policy::protect))
        // Outside the timeout, so a request answered 503 by it is counted and timed like any other.
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span::request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Micros))
                // An error status is an answer, logged with its cause where it arises (ApiError): a
                // second ERROR line per 503 would flood the log while the database is away.
                .on_failure(()),
        )
}
