//! Configuration shared by the subcommands: flags, each with an environment fallback, and the `.env`
//! file that may set them.
//!
//! Turns what the user typed into the core's settings (connect options, retry policy); never connects,
//! never prints, and never shows a password: a URL is only ever named in its redacted form, and a `.env`
//! line that cannot be parsed is named by its key, without its value.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use racelab_core::db::{DEFAULT_DATABASE_URL, UrlError};
use racelab_core::strategy::{DEFAULT_SLOTS, MAX_SLOTS};
use racelab_core::{Backend, ConnectOptions, DatabaseUrl, RetryPolicy};

use crate::telemetry::LogFormat;

/// Where the database is and how to talk to it.
///
/// Under a heading of its own, after the subcommand's own flags: the help shows first what a user
/// reaches for first. Each flag's first paragraph is its `-h` line; `--help` adds the rest.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseArgs {
    /// postgres://, mysql:// (or mariadb://) or sqlite:// URL [default: the SQLite file racelab.db].
    ///
    /// The SQLite default is created on demand in the working directory. `lab` and `bench` take
    /// several (repeat the flag, or separate them with commas, also in DATABASE_URL): the nodes of
    /// one cluster, which the workers are spread over. A PostgreSQL URL may name several hosts, as
    /// libpq does (postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write): one database,
    /// the host that accepts writes, found again after a failover.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true,
          hide_default_value = true, num_args = 1)]
    pub database_url: Vec<String>,

    /// Most connections in the pool (default: enough for the largest experiment).
    #[arg(long, env = "RACELAB_POOL_SIZE", hide_short_help = true)]
    pub pool_size: Option<u32>,

    /// How long a lock may be waited for, e.g. 5s, 500ms.
    ///
    /// Row locks, application locks, and SQLite's busy wait.
    #[arg(long, env = "RACELAB_LOCK_TIMEOUT", default_value = "5s", value_parser = parse_duration,
          hide_short_help = true)]
    pub lock_timeout: Duration,

    /// SQL run on every new connection. Repeatable.
    ///
    /// For example "SET SESSION innodb_snapshot_isolation = ON"; several statements may be separated
    /// with `;`.
    #[arg(long = "init-sql", env = "RACELAB_INIT_SQL", value_delimiter = ';', hide_short_help = true)]
    pub init_sql: Vec<String>,
}

/// Why the database flags name no database a command can work on. Every case is the user's input to
/// fix (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum DatabaseArgsError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("--database-url is empty")]
    NoUrl,
    #[error("this command works on one database: give one --database-url (several are for lab and bench)")]
    SeveralUrls,
    #[error("the nodes of one experiment must be one kind of database: {first} and {other}")]
    MixedBackends { first: Backend, other: Backend },
}

impl DatabaseArgs {
    /// Connect options for the one database a command works on, with a pool of at least `min_pool`
    /// connections. Several URLs are refused here: only `lab` and `bench` spread over nodes.
    pub fn connect_options(&self, min_pool: u32) -> Result<ConnectOptions, DatabaseArgsError> {
        match self.connect_options_each(min_pool)?.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(DatabaseArgsError::SeveralUrls),
        }
    }

    /// The URLs given, blanks dropped: each value split at its commas, except a comma inside a URL's
    /// host list (what follows it does not start a URL of its own: `h2:5432/db` has no scheme).
    fn urls(&self) -> Vec<&str> {
        self.database_url.iter().flat_map(|value| split_urls(value)).map(str::trim).filter(|u| !u.is_empty()).collect()
    }

    /// The most workers one node runs when `workers` are spread round-robin over the URLs given.
    pub fn workers_per_node(&self, workers: usize) -> usize {
        workers.div_ceil(self.urls().len().max(1))
    }

    /// Connect options for every URL given (the nodes of one cluster), each pool of at least
    /// `min_pool` connections.
    pub fn connect_options_each(&self, min_pool: u32) -> Result<Vec<ConnectOptions>, DatabaseArgsError> {
        let urls = self.urls();
        if urls.is_empty() {
            return Err(DatabaseArgsError::NoUrl);
        }
        let mut each = Vec::with_capacity(urls.len());
        for url in urls {
            let mut options = ConnectOptions::new(DatabaseUrl::parse(url)?);
            options.max_connections = self.pool_size.unwrap_or(min_pool).max(1);
            options.lock_timeout = self.lock_timeout;
            options.init_statements =
                self.init_sql.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
            each.push(options);
        }
        if let Some(other) = each.iter().find(|o| o.url.backend() != each[0].url.backend()) {
            return Err(DatabaseArgsError::MixedBackends { first: each[0].url.backend(), other: other.url.backend() });
        }
        Ok(each)
    }
}

/// `value` split at each comma that starts another URL: one with a `scheme://` or `sqlite:`, or a blank.
fn split_urls(value: &str) -> Vec<&str> {
    let starts_a_url = |piece: &str| {
        let piece = piece.trim();
        piece.is_empty() || piece.contains("://") || piece.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("sqlite:"))
    };
    let mut urls = Vec::new();
    let mut start = 0;
    let mut from = 0;
    while let Some(comma) = value[from..].find(',').map(|i| from + i) {
        let rest = &value[comma + 1..];
        let next = rest.find(',').map_or(rest, |i| &rest[..i]);
        if starts_a_url(next) {
            urls.push(&value[start..comma]);
            start = comma + 1;
        }
        from = comma + 1;
    }
    urls.push(&value[start..]);
    urls
}

/// The absolute path of the file a `sqlite:` URL names, or `None` for another URL or an in-memory
/// database. A relative path is the working directory's, as SQLite opens it.
pub fn sqlite_file(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    let path = std::path::Path::new(path);
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let absolute = absolute.canonicalize().unwrap_or(absolute);
    Some(absolute.display().to_string())
}

/// The retry policy of every strategy that retries: tuning, so shown by `--help` only.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Tuning")]
pub struct RetryArgs {
    /// Attempts per increment, the first included.
    #[arg(long, env = "RACELAB_MAX_ATTEMPTS", default_value_t = RetryPolicy::default().max_attempts,
          hide_short_help = true)]
    pub max_attempts: u32,
    /// Upper bound of the first backoff sleep; doubles per retry.
    ///
    /// Full jitter: each sleep is random below the bound.
    #[arg(long, env = "RACELAB_BACKOFF_BASE", default_value = "1ms", value_parser = parse_duration,
          hide_short_help = true)]
    pub backoff_base: Duration,
    /// Cap of one backoff sleep.
    #[arg(long, env = "RACELAB_BACKOFF_CAP", default_value = "100ms", value_parser = parse_duration,
          hide_short_help = true)]
    pub backoff_cap: Duration,
    /// No retry starts after this long since an increment's first attempt.
    #[arg(long, env = "RACELAB_RETRY_DEADLINE", default_value = "30s", value_parser = parse_duration,
          hide_short_help = true)]
    pub retry_deadline: Duration,
}

impl RetryArgs {
    pub fn policy(&self) -> Result<RetryPolicy, racelab_core::retry::RetryPolicyError> {
        let policy = RetryPolicy {
            max_attempts: self.max_attempts,
            base_delay: self.backoff_base,
            max_delay: self.backoff_cap,
            deadline: self.retry_deadline,
        };
        policy.validate().map(|()| policy)
    }
}

/// The `sharded` strategy's slot count: tuning, so shown by `--help` only.
#[derive(Debug, Clone, Copy, Args)]
#[command(next_help_heading = "Tuning")]
pub struct ShardArgs {
    /// Slot rows the `sharded` strategy spreads a counter over (1 to 1024).
    ///
    /// More slots, fewer workers waiting on the same slot, a longer sum to read. Also the `booking`
    /// workload's time slots per room.
    #[arg(long, env = "RACELAB_SLOTS", default_value_t = DEFAULT_SLOTS,
          value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_SLOTS)), hide_short_help = true)]
    pub slots: u16,
}

/// Logging: last in the help, `--log` shown by `-h` too (it is how per-worker progress is seen).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Log filter in RUST_LOG syntax, e.g. info or racelab_core=debug (per-worker progress).
    #[arg(long = "log", env = "RUST_LOG", global = true)]
    pub filter: Option<String>,
    /// Log line format.
    #[arg(long, env = "RACELAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true,
          hide_short_help = true)]
    pub log_format: LogFormat,
}

/// Why `.env` was not read. Printed as the message a user sees (exit code 2); never holds a value of
/// the file, which may be a password.
#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    #[error("cannot read the working directory: {0}")]
    WorkingDirectory(#[source] std::io::Error),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: dotenvy::Error,
    },
    /// "/x/.env line 3 (RACELAB_INIT_SQL=...) cannot be parsed", with the advice that fixes it.
    /// dotenvy's own error is not kept as the source: it holds the failing text, value included.
    #[error(
        "{}{}{} cannot be parsed; quote a value that holds spaces or quotes, e.g. KEY=\"a b\"",
        path.display(),
        line.map_or_else(String::new, |n| format!(" line {n}")),
        key.as_ref().map_or_else(String::new, |key| format!(" ({key}=...)"))
    )]
    Unparsable {
        path: PathBuf,
        /// The line that fails, from 1, where it could be found.
        line: Option<usize>,
        /// That line's key, where it is a plain name.
        key: Option<String>,
    },
}

/// A `.env` file that was read, and the settings it gave: those the environment did not already
/// have (real environment variables win). Names only, never values: a value may be a password.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dotenv {
    pub path: PathBuf,
    /// The variables this file set, in the file's order.
    pub keys: Vec<String>,
}

impl Dotenv {
    /// "settings from /x/.env: DATABASE_URL, RACELAB_LOCK_TIMEOUT", or `None` when it set nothing.
    pub fn summary(&self) -> Option<String> {
        (!self.keys.is_empty()).then(|| format!("settings from {}: {}", self.path.display(), self.keys.join(", ")))
    }
}

/// Reads `.env` from the working directory, or the nearest parent directory that has one (as dotenvy
/// looks for it); real environment variables win. Returns the file read and the settings it gave, so
/// a command can say where a setting came from (a forgotten `.env` two folders up is a surprise).
///
/// A line that cannot be parsed is an error naming the file and the line: dotenvy would stop loading
/// there without a word, and the lab would run on the SQLite default instead of the database named
/// on a later line. The line's value is never shown: it may hold a password.
pub fn load_dotenv() -> Result<Option<Dotenv>, DotenvError> {
    let cwd = std::env::current_dir().map_err(DotenvError::WorkingDirectory)?;
    let Some(path) = cwd.ancestors().map(|dir| dir.join(".env")).find(|p| p.is_file()) else {
        return Ok(None);
    };
    let path = path.canonicalize().unwrap_or(path);
    // The keys this file will set: those the environment does not have yet (dotenvy never overrides).
    let keys: Vec<String> = match dotenvy::from_path_iter(&path) {
        Ok(items) => {
            items.filter_map(Result::ok).map(|(key, _)| key).filter(|key| std::env::var_os(key).is_none()).collect()
        }
        Err(_) => Vec::new(),
    };
    match dotenvy::from_path(&path) {
        Ok(()) => Ok(Some(Dotenv { path, keys })),
        Err(dotenvy::Error::LineParse(..)) => Err(unparsable_line(path)),
        Err(source) => Err(DotenvError::Read { path, source }),
    }
}

/// The error naming the line of `path` that dotenvy could not parse, and its key.
fn unparsable_line(path: PathBuf) -> DotenvError {
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let line = failing_line(&text);
    let file_line = line.and_then(|n| text.lines().nth(n - 1)).unwrap_or_default();
    let key = file_line.split_once('=').map_or("", |(k, _)| k.trim().trim_start_matches("export ").trim());
    let key = (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then(|| key.to_owned());
    DotenvError::Unparsable { path, line, key }
}

/// The number (from 1) of the line where `.env` text stops parsing: the one after the longest run of
/// first lines that parses whole. dotenvy's error holds the failing text, not its line, and that text
/// may end another line too (a comment quoting it, a valid line with a trailing comment); a quoted
/// value that spans lines parses once its closing quote is in, so it is not taken for the failure.
fn failing_line(text: &str) -> Option<usize> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let parses = |n: usize| dotenvy::from_read_iter(lines[..n].concat().as_bytes()).all(|item| item.is_ok());
    let longest = (0..=lines.len()).rev().find(|&n| parses(n))?;
    (longest < lines.len()).then_some(longest + 1)
}

/// Why a duration flag was refused; clap prints it after the flag's name and value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is not a duration (try 500ms, 10s, 2m)")]
    NotANumber(String),
    #[error("`{0}` has no unit: write {0}s or {0}ms (units: ms, s, m, h)")]
    NoUnit(String),
    #[error("unknown duration unit `{unit}` in `{text}` (use ms, s, m or h)")]
    UnknownUnit { unit: String, text: String },
    #[error("duration `{0}` is out of range")]
    OutOfRange(String),
}

/// Parses `250ms`, `5s`, `2m`, `1.5s`. A number needs its unit (`5` could mean seconds or
/// milliseconds, and guessing wrong is a factor of 1000), except `0`, which is the same in every unit.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| DurationError::NotANumber(text.to_owned()))?;
    let seconds = match unit.trim() {
        "" if value == 0.0 => 0.0,
        "" => return Err(DurationError::NoUnit(text.to_owned())),
        "s" => value,
        "ms" => value / 1000.0,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(DurationError::UnknownUnit { unit: other.to_owned(), text: text.to_owned() }),
    };
    if !seconds.is_finite() || !(0.0..=86_400.0 * 7.0).contains(&seconds) {
        return Err(DurationError::OutOfRange(text.to_owned()));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_duration("5").unwrap_err().to_string(),
            "`5` has no unit: write 5s or 5ms (units: ms, s, m, h)"
        );
        assert!(parse_duration("1.5").unwrap_err().to_string().contains("no unit"));
        assert!(parse_duration("ten").unwrap_err().to_string().contains("not a duration"));
        assert!(parse_duration("5 parsecs").unwrap_err().to_string().contains("unknown duration unit"));
    }

    #[test]
    fn a_host_list_stays_one_url_and_other_commas_separate_urls() {
        let pgha = "postgres://u@127.0.0.1:5441,127.0.0.1:5442,127.0.0.1:5443/x?target_session_attrs=read-write";
        assert_eq!(split_urls(pgha), [pgha]);
        let nodes = "mysql://root@h:3311/test, mysql://root@h:3312/test,sqlite:a.db,";
        assert_eq!(split_urls(nodes), ["mysql://root@h:3311/test", " mysql://root@h:3312/test", "sqlite:a.db", ""]);
        let mixed = format!("{pgha},postgres://u@h3/x");
        assert_eq!(split_urls(&mixed), [pgha, "postgres://u@h3/x"]);
        let args = DatabaseArgs {
            database_url: vec![pgha.to_owned()],
            pool_size: None,
            lock_timeout: Duration::from_secs(5),
            init_sql: Vec::new(),
        };
        let options = args.connect_options(8).unwrap();
        assert!(options.url.is_multi_host());
        assert_eq!(args.workers_per_node(8), 8);
    }
}
