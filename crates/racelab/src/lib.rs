//! The racelab application: command line, HTTP service and reports, on top of `racelab-core`.
//!
//! A guided tour, top to bottom (each module imports only the ones below it): [`cli`] parses the
//! command line with the flags of [`config`] and runs one subcommand; `serve` starts the [`http`]
//! service, `lab`, `bench` and `anomalies` run the core's experiments and print them through
//! [`report`]; [`telemetry`] sets up the logs they all write.
//!
//! Knows nothing of SQL dialects: every database detail is in the core crate. Never prints or logs a
//! database password: URLs are shown only in the core's redacted form.

/// The subcommands `serve`, `lab`, `bench`, `anomalies` and `migrate`, and how their failures are
/// printed (`error: ...`, exit code 2 for bad input, 1 otherwise).
pub mod cli;
/// Flags shared by the subcommands (database, retries, slots, logging), each with an environment
/// fallback, and the `.env` file that may set them.
pub mod config;
/// The HTTP service: the seed's `/test-db` lab endpoints, `/posts` and their idempotent likes,
/// `/experiments` runs with live progress, the page at `/`, health, OpenAPI docs and metrics.
pub mod http;
/// Tables for the terminal, and the bench's JSON, CSV and SVG chart.
pub mod report;
/// Logging: `tracing` to stderr, as text or JSON, with the filter that keeps passwords out.
pub mod telemetry;
