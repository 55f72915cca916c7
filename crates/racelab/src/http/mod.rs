//! The HTTP service: the seed's `/test-db` demo rebuilt on the experiment engine, plus what a service
//! an engineer trusts needs (health, readiness, OpenAPI, metrics, problem+json errors).
//!
//! ```sh
//! cargo run --release -- serve --bind 127.0.0.1:8000
//! curl -s 'http://127.0.0.1:8000/test-db/2th-plock?workers=8&increments=100' | jq .verdict
//! ```
//!
//! Nothing here speaks SQL: every database operation goes through `racelab-core`.

/// Write-combining: concurrent likes on one post made in one transaction (`--combine-likes`).
mod combining;
/// What the service is started with: `HttpConfig`, and the settings of likes and runs.
mod config;
/// The accept loop: idle timeouts, the connection cap fitted to the open-files limit, shedding idle
/// connections, hyper's bare answers turned into problems.
pub mod connections;
/// When a request must be answered by, for handlers that answer with what they did before the timeout.
mod deadline;
/// How much of a client's text an answer or a log line may repeat.
mod echo;
/// Problem details (RFC 9457): the one error body of the service, and the status of each error kind.
pub mod error;
/// `/experiments`: runs of the lab, the bench or the anomalies started by a request, watched live (SSE).
pub mod experiments;
/// `/health` and `/ready`.
mod health;
/// `Content-Security-Policy` (no framing) on every HTML page, `nosniff` on every answer.
mod html_policy;
/// A request's JSON body, with the media type, size and syntax errors every endpoint words alike.
mod json_body;
/// The seed's `/test-db/*` endpoints, each one experiment of the engine.
pub mod lab;
/// `POST /posts/{pk}/likes`: one like with the configured strategy, at most once per `Idempotency-Key`.
pub mod likes;
/// The largest experiment one request may ask for, applied to the document and the parser alike.
mod limits;
/// Prometheus `/metrics` and the middleware that counts requests.
mod metrics;
/// `/openapi.json` and the Swagger UI at `/docs`, and the problem answers every area documents.
pub mod openapi;
/// The page at `/` and its embedded assets under `/assets/`.
mod page;
/// The `{pk}` of a post's path.
mod post_key;
/// `/posts`: the post as a JSON resource, with `ETag` / `If-Match` (412, 428) tied to its version.
mod posts;
/// Query string parsing with errors that name the parameter and its allowed values.
pub mod query;
/// ReDoc at `/redoc`, from the binary, as FastAPI serves it.
mod redoc;
/// Limits on a request's URI, header fields and body (414, 431, 413).
pub mod request_limits;
/// The span each request's log lines sit in, its URI cut.
mod request_span;
/// `Application::build` / `run_until_stopped`, the router, graceful shutdown.
mod startup;
/// What every handler shares: the (lazily connected) database and one lock per post.
mod state;

pub use config::{HttpConfig, LikeSettings};
pub use connections::ConnectionSettings;
pub use connections::budget::ConnectionBudget;
pub use startup::{Application, StartupError, router};
pub use state::AppState;
