//! The racelab application: command line, HTTP service and reports, on top of `racelab-core`.
//!
//! Knows nothing of SQL dialects: every database detail is in the core crate.

/// Subcommands: `serve`, `lab`, `bench`, `migrate`.
pub mod cli;
/// Flags with environment fallbacks, shared by every subcommand.
pub mod config;
/// The HTTP service: the seed's `/test-db` endpoints, health, OpenAPI, metrics.
pub mod http;
/// Tables, JSON, CSV and SVG charts.
pub mod report;
/// Logging setup.
pub mod telemetry;
