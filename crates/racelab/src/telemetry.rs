//! Logging: `tracing` to stderr, as text or JSON, filtered by `RUST_LOG` syntax.
//!
//! Never writes to stdout (that is the commands' output, which programs read), and never lets a
//! filter turn on the one log target known to print a URL parameter's value (see [`init`](crate::telemetry::init)).

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The log target that prints URL parameter values (see [`init`]).
const SILENCED: &str = "sqlx_postgres::options::parse=off";

/// Installs the global subscriber. `filter` uses `RUST_LOG` syntax (`info`, `racelab_core=debug`).
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // sqlx-postgres warns of a URL parameter it does not know with its value, which may be a password
    // (`PASSWORD=`, `sslpassword=`): off, whatever the filter asks. racelab's own connections name such
    // a parameter without its value; the anomaly suite's raw connections would not.
    let filter = filter.add_directive(SILENCED.parse().expect("a valid directive"));
    // Colours only where someone reads them: a log redirected to a file gets plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
