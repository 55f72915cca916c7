//! Database URLs: which backend a URL names, and how to print one without its password.
//!
//! The password leaves this module only through [`DatabaseUrl::expose`] and [`DatabaseUrl::host_urls`],
//! for the driver: every message, log line and `Debug` print uses the redacted form. Nothing here
//! connects.
//!
//! A PostgreSQL URL may name several hosts, as libpq reads it (`postgres://u@h1:5441,h2:5442/db`), with
//! `target_session_attrs` saying which of them to keep: the primary of a Patroni cluster is whichever
//! host accepts writes now. sqlx knows one host per URL, so such a URL is split here into one
//! single-host URL per host; `db::hosts` tries them in order. An attribute racelab cannot honour is
//! refused by name, never ignored.

use std::fmt;

/// The SQLite file used when nothing is configured: `racelab.db` in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://racelab.db";

/// The three database families racelab speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Postgres,
    MySql,
    Sqlite,
}

impl Backend {
    /// Every backend, for tests and documentation that must not forget one.
    pub const ALL: [Backend; 3] = [Backend::Postgres, Backend::MySql, Backend::Sqlite];

    /// The lower-case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a URL was refused. The URL itself is never part of the message, only its redacted form.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("database URL `{url}` has no scheme; expected postgres://, mysql://, mariadb:// or sqlite://")]
    NoScheme { url: String },
    #[error(
        "database URL `{url}` has unsupported scheme `{scheme}`; expected postgres://, mysql://, mariadb:// or sqlite://"
    )]
    UnknownScheme { url: String, scheme: String },
    #[error("database URL `{url}` is malformed: {reason}")]
    Malformed { url: String, reason: String },
    /// A known scheme followed by something else than `://` (`postgres:/`, `postgres:`, `mysql//`),
    /// so that no host can be read: `typed` is that part, as typed (it holds no password).
    #[error("database URL `{url}` has `{typed}` where `{scheme}://` belongs: nothing after it can be read as a host")]
    NoDoubleSlash { url: String, typed: String, scheme: String },
    /// A URL parameter racelab reads but cannot honour with this value (`target_session_attrs=standby`:
    /// racelab writes, so it needs the primary).
    #[error("database URL `{url}`: `{parameter}={value}` is not supported: {reason}")]
    Unsupported { url: String, parameter: String, value: String, reason: String },
}

/// Which host of a PostgreSQL URL a session is kept on: libpq's `target_session_attrs`, as far as racelab,
/// which writes, can honour it (`standby`, `prefer-standby` and `read-only` are refused by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionTarget {
    /// The first host that accepts a connection (libpq's default).
    Any,
    /// The first host whose sessions may write: `SHOW transaction_read_only` is `off`.
    ReadWrite,
    /// The first host that is not in recovery: `pg_is_in_recovery()` is false.
    Primary,
}

impl SessionTarget {
    /// The value as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionTarget::Any => "any",
            SessionTarget::ReadWrite => "read-write",
            SessionTarget::Primary => "primary",
        }
    }
}

/// A database URL that has been checked and knows its backend.
#[derive(Clone)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
    /// One URL per host, in the order given, without the parameters read here; a single-host URL's is
    /// `raw` itself, unless it had `target_session_attrs`.
    hosts: Vec<String>,
    /// `target_session_attrs`, when the URL says it (PostgreSQL only).
    target: Option<SessionTarget>,
}

impl DatabaseUrl {
    /// Parses a URL and decides its backend. `mariadb://` is accepted as an alias of `mysql://`.
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let raw = raw.trim();
        if let Some((scheme, typed)) = misspelled_separator(raw) {
            return Err(UrlError::NoDoubleSlash { url: redact_unparsed(raw), typed, scheme });
        }
        let Some((scheme, rest)) = raw.split_once(':') else {
            return Err(UrlError::NoScheme { url: redact_unparsed(raw) });
        };
        let backend = match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Backend::Postgres,
            "mysql" | "mariadb" => Backend::MySql,
            "sqlite" => Backend::Sqlite,
            // Only a well-formed `scheme://` names its scheme: in `user:password@host` the "scheme" is
            // the user name, and in worse forms it could be anything.
            other if authority_start(raw).is_some() => {
                return Err(UrlError::UnknownScheme { url: redact_unparsed(raw), scheme: other.to_owned() });
            }
            _ => return Err(UrlError::NoScheme { url: redact_unparsed(raw) }),
        };
        let (hosts, target) = match backend {
            Backend::Sqlite => (vec![raw.to_owned()], None),
            Backend::Postgres => postgres_hosts(raw)?,
            Backend::MySql => {
                if host_list(raw).is_some_and(|(_, hosts)| hosts.contains(',')) {
                    return Err(UrlError::Malformed {
                        url: redact_unparsed(raw),
                        reason:
                            "several hosts in one URL are a PostgreSQL form; give a Galera cluster one URL per node"
                                .into(),
                    });
                }
                check_server_url(raw)?;
                (vec![raw.to_owned()], None)
            }
        };
        // sqlx's MySQL driver only knows the `mysql` scheme.
        let (raw, hosts) = if backend == Backend::MySql && scheme.eq_ignore_ascii_case("mariadb") {
            let raw = format!("mysql:{rest}");
            (raw.clone(), vec![raw])
        } else {
            (raw.to_owned(), hosts)
        };
        Ok(Self { raw, backend, hosts, target })
    }

    /// One URL per host, in the order the URL gives them, each for the driver (it holds the password),
    /// without the parameters racelab reads itself (`target_session_attrs`).
    pub(crate) fn host_urls(&self) -> &[String] {
        &self.hosts
    }

    /// Whether this URL names more than one host, or says which host to keep: a session target is
    /// then watched (see `db::hosts`).
    pub fn is_multi_host(&self) -> bool {
        self.hosts.len() > 1 || self.target.is_some()
    }

    /// `target_session_attrs`, when the URL gives it.
    pub fn session_target(&self) -> Option<SessionTarget> {
        self.target
    }

    /// The backend this URL names.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with its password, for the driver only.
    pub(crate) fn expose(&self) -> &str {
        &self.raw
    }

    /// The URL with any password replaced by `***`: safe to print and log.
    pub fn redacted(&self) -> String {
        redact(&self.raw)
    }

    /// A SQLite URL's file, absolute (a relative one is taken from the working directory, as the
    /// driver takes it); `None` for a server URL or an in-memory database.
    pub fn sqlite_path(&self) -> Option<String> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let rest = &self.raw["sqlite:".len()..];
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split(['?', '#']).next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return None;
        }
        let path = std::path::Path::new(path);
        let absolute = match std::env::current_dir() {
            Ok(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        };
        Some(absolute.display().to_string())
    }
}

/// A server URL as the `url` crate reads it, with a host.
fn check_server_url(raw: &str) -> Result<(), UrlError> {
    let parsed =
        url::Url::parse(raw).map_err(|e| UrlError::Malformed { url: redact_unparsed(raw), reason: e.to_string() })?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::Malformed { url: redact_unparsed(raw), reason: "no host".into() });
    }
    Ok(())
}

/// Where the host list of a `scheme://` URL is: its byte offset and its text (`h1:1,h2:2`), between the
/// userinfo's `@` and the path, query or fragment. (A password holding `/`, `?` or `#` unencoded leaves
/// the URL as one host, for the URL parser to judge, as before host lists.)
fn host_list(raw: &str) -> Option<(usize, &str)> {
    let start = authority_start(raw)?;
    let end = raw[start..].find(['/', '?', '#']).map_or(raw.len(), |i| start + i);
    let hosts_start = raw[start..end].rfind('@').map_or(start, |at| start + at + 1);
    Some((hosts_start, &raw[hosts_start..end]))
}

/// A PostgreSQL URL's hosts, one URL each, and its `target_session_attrs`; both parameters racelab reads
/// itself are taken out of the URLs handed to the driver, which does not know them.
fn postgres_hosts(raw: &str) -> Result<(Vec<String>, Option<SessionTarget>), UrlError> {
    let refuse = |parameter: &str, value: &str, reason: &str| UrlError::Unsupported {
        url: redact_unparsed(raw),
        parameter: parameter.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let Some((hosts_start, list)) = host_list(raw) else {
        // Not `scheme://`: the parse below says what is wrong.
        check_server_url(raw)?;
        return Ok((vec![raw.to_owned()], None));
    };
    let head = &raw[..hosts_start];
    let tail = &raw[hosts_start + list.len()..];
    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (tail, None),
    };
    let (query, fragment) = match query.map(|q| q.split_once('#').unwrap_or((q, ""))) {
        Some((query, fragment)) => (query, fragment),
        None => ("", ""),
    };
    let mut target = None;
    let mut kept = Vec::new();
    for segment in query.split('&').filter(|s| !s.is_empty()) {
        let (name, value) = url::form_urlencoded::parse(segment.as_bytes()).next().unwrap_or_default();
        match name.as_ref() {
            "target_session_attrs" => {
                target = Some(match value.as_ref() {
                    "any" => SessionTarget::Any,
                    "read-write" => SessionTarget::ReadWrite,
                    "primary" => SessionTarget::Primary,
                    "standby" | "prefer-standby" | "read-only" => {
                        return Err(refuse(
                            &name,
                            &value,
                            "racelab writes, so it needs a host that accepts writes: use read-write (or primary, or any)",
                        ));
                    }
                    _ => {
                        return Err(refuse(
                            &name,
                            &value,
                            "libpq's values are any, read-write, read-only, primary, standby and prefer-standby; \
                             racelab honours any, read-write and primary",
                        ));
                    }
                })
            }
            // libpq 16: `disable` (the hosts in order) is what racelab does; a random order is not.
            "load_balance_hosts" if value == "disable" => {}
            "load_balance_hosts" => {
                return Err(refuse(
                    &name,
                    &value,
                    "racelab tries the hosts in the order given (load_balance_hosts=disable)",
                ));
            }
            // libpq's other form of a host list: racelab reads hosts in the URL's authority only.
            "host" | "hostaddr" | "port" if value.contains(',') => {
                return Err(refuse(
                    &name,
                    &value,
                    "give several hosts in the URL itself: postgres://user@h1:5432,h2:5432/db",
                ));
            }
            _ => kept.push(segment),
        }
    }
    let rebuilt_tail = |path: &str| {
        let mut tail = path.to_owned();
        if !kept.is_empty() {
            tail.push('?');
            tail.push_str(&kept.join("&"));
        }
        if !fragment.is_empty() {
            tail.push('#');
            tail.push_str(fragment);
        }
        tail
    };
    let entries: Vec<&str> = list.split(',').collect();
    if entries.len() == 1 && target.is_none() {
        check_server_url(raw)?;
        return Ok((vec![raw.to_owned()], None));
    }
    let mut hosts = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        if entry.is_empty() {
            return Err(UrlError::Malformed {
                url: redact_unparsed(raw),
                reason: format!("host {} of the host list is empty", i + 1),
            });
        }
        let one = format!("{head}{entry}{}", rebuilt_tail(path));
        // The entry is not quoted: a port that is not a number may be a password typed without a host.
        check_server_url(&one).map_err(|err| match err {
            UrlError::Malformed { reason, .. } => UrlError::Malformed {
                url: redact_unparsed(raw),
                reason: format!("host {} of the list: {reason}", i + 1),
            },
            other => other,
        })?;
        hosts.push(one);
    }
    Ok((hosts, target))
}

impl DatabaseUrl {
    /// The shell command that creates the database this URL names on its server, for a hint when
    /// it does not exist. It succeeds when the database exists by then too (created meanwhile, or the
    /// command run twice): `mysql -h127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS test'`; and,
    /// as PostgreSQL has no `CREATE DATABASE IF NOT EXISTS` and `createdb` fails on an existing one,
    /// `psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname =
    /// 'test'" | grep -q 1 || createdb -h 127.0.0.1 -U postgres test`. Never holds the password
    /// (`mysql -p` asks for it; psql and createdb ask, or read `PGPASSWORD`).
    pub fn create_database_command(&self) -> Option<String> {
        let url = url::Url::parse(&self.raw).ok()?;
        let name = url.path().trim_start_matches('/');
        let host = url.host_str()?;
        if name.is_empty() || name.contains(['/', '\'', ' ']) {
            return None;
        }
        let user = url.username();
        match self.backend {
            Backend::Postgres => {
                let mut connection = format!("-h {host}");
                if let Some(port) = url.port() {
                    connection.push_str(&format!(" -p {port}"));
                }
                if !user.is_empty() {
                    connection.push_str(&format!(" -U {user}"));
                }
                Some(format!(
                    "psql {connection} -d postgres -tAc \"SELECT 1 FROM pg_database WHERE datname = '{name}'\" \
                     | grep -q 1 || createdb {connection} {name}"
                ))
            }
            Backend::MySql => {
                let mut command = format!("mysql -h{host}");
                if let Some(port) = url.port() {
                    command.push_str(&format!(" -P{port}"));
                }
                if !user.is_empty() {
                    command.push_str(&format!(" -u{user}"));
                }
                if url.password().is_some() {
                    command.push_str(" -p");
                }
                Some(format!("{command} -e 'CREATE DATABASE IF NOT EXISTS {name}'"))
            }
            Backend::Sqlite => None,
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.redacted()).finish()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Replaces every password-looking part of a string given as a database URL with `***`: the password
/// of `scheme://user:password@host`, the value of any parameter whose name, percent-decoded, holds
/// `pass`, `pwd`, `secret` or `token` (`password=`, `PASSWORD=`, `pass%77ord=`, `sslpassword=`), and,
/// because an error message about a bad URL must not leak its secret either, whatever precedes the `@`
/// of a malformed URL (`postgres:/u:pw@h`, `postgres:u:pw@h`, `u:pw@h`, `postgres//u:pw@h`) and a port
/// that is not a number (`postgres://u:pw/x`, a password typed without a host). It errs on the side of
/// hiding too much.
/// Safe on a driver's message as well as on a URL: text without these shapes is left alone.
pub fn redact(raw: &str) -> String {
    redact_bare_parameters(&redact_parameters(&redact_userinfo(raw)))
}

/// In a `scheme://` URL, a query segment without `=` (`postgres://h/db?S3cret`) is no parameter a
/// driver reads: most likely a password typed in the wrong place, so it is hidden.
fn redact_bare_parameters(text: &str) -> String {
    let (Some(_), Some(question)) = (authority_start(text), text.find('?')) else {
        return text.to_owned();
    };
    let (head, query) = text.split_at(question + 1);
    let (query, fragment) = query.split_at(query.find('#').unwrap_or(query.len()));
    let segments: Vec<&str> = query
        .split('&')
        .map(|segment| if segment.is_empty() || segment.contains('=') { segment } else { "***" })
        .collect();
    format!("{head}{}{fragment}", segments.join("&"))
}

/// [`redact`] for a string that did not parse as a URL, shown in the error saying so: without an `@`
/// or a `scheme://`, anything after a colon (past a known scheme's) may be a password (`u:pw`,
/// `postgres:u:pw`, `postgres:/u:pw`), and is hidden. Not for messages: their colons are prose.
fn redact_unparsed(raw: &str) -> String {
    let redacted = redact(raw);
    if redacted.contains('@') || authority_start(&redacted).is_some() {
        return redacted;
    }
    let after_scheme = known_scheme_len(&redacted);
    match redacted[after_scheme..].find(':') {
        Some(colon) => format!("{}:***", &redacted[..after_scheme + colon]),
        None => redacted,
    }
}

/// What a parameter name holds when its value is a secret (matched on the lower-cased, percent-decoded
/// name, as the driver decodes it: `pass%77ord` is `password`).
const SECRET_PARAMETER_WORDS: [&str; 4] = ["pass", "pwd", "secret", "token"];

/// Hides the value of every `name=value` whose name looks secret; the value ends at the next `&`.
fn redact_parameters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search_from = 0;
    while let Some(found) = text[search_from..].find('=') {
        let equals = search_from + found;
        let name_start = text[..equals].rfind(['?', '&', ';', ' ', '\t', '\n']).map_or(0, |i| i + 1);
        let name: String = url::form_urlencoded::parse(&text.as_bytes()[name_start..equals])
            .next()
            .map(|(name, _)| name.to_ascii_lowercase())
            .unwrap_or_default();
        if !SECRET_PARAMETER_WORDS.iter().any(|word| name.contains(word)) {
            search_from = equals + 1;
            continue;
        }
        let value_end = text[equals..].find('&').map_or(text.len(), |i| equals + i);
        out.push_str(&text[copied..=equals]);
        out.push_str("***");
        copied = value_end;
        search_from = value_end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The schemes racelab knows, kept in a redacted malformed URL so that the message still says which
/// backend was meant.
const KNOWN_SCHEMES: [&str; 5] = ["postgresql", "postgres", "mariadb", "mysql", "sqlite"];

/// A server scheme followed by a run of `:` and `/` that does not begin with `://` (`postgres:/`,
/// `postgres:`, `mysql//`): the scheme, lower-cased, and the part typed in its place. `postgres:///db`
/// (no host) is not one of these, nor any SQLite URL (`sqlite:racelab.db` is a valid one).
fn misspelled_separator(raw: &str) -> Option<(String, String)> {
    let name = known_scheme_name_len(raw)?;
    let scheme = raw[..name].to_ascii_lowercase();
    if scheme == "sqlite" {
        return None;
    }
    let rest = &raw[name..];
    let run = rest.len() - rest.trim_start_matches([':', '/']).len();
    (!rest.starts_with("://")).then(|| (scheme, raw[..name + run].to_owned()))
}

/// The length of a known scheme's name at the start of `text` when a `:` or `/` follows it.
fn known_scheme_name_len(text: &str) -> Option<usize> {
    KNOWN_SCHEMES
        .iter()
        .find(|s| {
            text.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)) && text[s.len()..].starts_with([':', '/'])
        })
        .map(|s| s.len())
}

fn redact_userinfo(raw: &str) -> String {
    // The userinfo ends at the LAST '@': a password may itself hold '/', '?', '#' or '@'. An '@'
    // further on (in a query) only makes this redact more than needed, never less.
    let Some(at) = raw.rfind('@') else {
        return redact_non_numeric_port(raw);
    };
    let (before, after) = raw.split_at(at);
    if let Some(userinfo_start) = authority_start(before) {
        return match before[userinfo_start..].find(':') {
            Some(colon) => format!("{}:***{after}", &before[..userinfo_start + colon]),
            None => raw.to_owned(),
        };
    }
    // Not `scheme://`. After a known scheme and whatever was typed in place of its `://`, the
    // userinfo's first colon starts the password, as in a well-formed URL: only that is hidden, so the
    // message shows what could not be read. Without a known scheme nothing before the '@' can be told
    // apart from a password: all of it is hidden.
    let Some(name) = known_scheme_name_len(before) else {
        return format!("***{after}");
    };
    let rest = &before[name..];
    let userinfo = name + rest.len() - rest.trim_start_matches([':', '/']).len();
    match before[userinfo..].find(':') {
        Some(colon) => format!("{}:***{after}", &before[..userinfo + colon]),
        None => raw.to_owned(),
    }
}

/// The length of a known scheme and its colon at the start of `text` (`postgres:`), or 0.
fn known_scheme_len(text: &str) -> usize {
    KNOWN_SCHEMES
        .iter()
        .find(|s| text.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)) && text[s.len()..].starts_with(':'))
        .map_or(0, |s| s.len() + 1)
}

/// Where the authority of a well-formed `scheme://` starts: after the `://` of a scheme made of
/// letters, digits, `+`, `-` and `.`, beginning with a letter.
fn authority_start(text: &str) -> Option<usize> {
    let end = text.find("://")?;
    let scheme = &text[..end];
    let mut chars = scheme.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    well_formed.then_some(end + 3)
}

/// `scheme://host:port/...` without an '@': a port that is not a number is a password that lost its
/// host (`postgres://user:secret/db`). Each host of a PostgreSQL host list (`h1:5441,h2:5442`) is
/// judged on its own: a list of numeric ports is left alone.
fn redact_non_numeric_port(raw: &str) -> String {
    let Some(start) = authority_start(raw) else {
        return raw.to_owned();
    };
    let end = raw[start..].find(['/', '?', '#']).map_or(raw.len(), |i| start + i);
    let entries: Vec<String> = raw[start..end].split(',').map(redact_entry_port).collect();
    format!("{}{}{}", &raw[..start], entries.join(","), &raw[end..])
}

/// One `host:port` with a port that is not a number replaced by `***`.
fn redact_entry_port(entry: &str) -> String {
    // Past an IPv6 literal's closing bracket, if any.
    let host_end = entry.rfind(']').unwrap_or(0);
    match entry[host_end..].find(':') {
        Some(colon) if !entry[host_end + colon + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}:***", &entry[..host_end + colon])
        }
        _ => entry.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_in_authority_and_query() {
        assert_eq!(redact("postgres://bob:s3cret@db:5432/x"), "postgres://bob:***@db:5432/x");
        assert_eq!(redact("mysql://root@h/test"), "mysql://root@h/test");
        assert_eq!(redact("postgres://h/x?user=a&password=s3cret&x=1"), "postgres://h/x?user=a&password=***&x=1");
        assert_eq!(redact("postgres://u:p@ss@h/x"), "postgres://u:***@h/x");
        // Characters that end an authority elsewhere may sit inside a password.
        assert_eq!(redact("postgres://bob:se/cret@127.0.0.1:5432/x"), "postgres://bob:***@127.0.0.1:5432/x");
        assert_eq!(redact("postgres://bob:se?cret@h/x"), "postgres://bob:***@h/x");
        assert_eq!(redact("mysql://bob:se#cret@h/x"), "mysql://bob:***@h/x");
    }

    /// URLs typed wrong (a missing `//` or scheme, a second `:` or no `@`), which no URL parser
    /// accepts and a naive redaction would print whole: the password never survives.
    #[test]
    fn redacts_malformed_urls() {
        let cases = [
            ("postgres:/u:S3cretPW@127.0.0.1:1/x", "postgres:/u:***@127.0.0.1:1/x"),
            ("postgres:u:S3cretPW@127.0.0.1:1/x", "postgres:u:***@127.0.0.1:1/x"),
            ("u:S3cretPW@127.0.0.1:1/x", "***@127.0.0.1:1/x"),
            ("postgres//u:S3cretPW@127.0.0.1:1/x", "postgres//u:***@127.0.0.1:1/x"),
            ("MySQL:/u:S3cretPW@h/x", "MySQL:/u:***@h/x"),
            ("postgres:/u:S3:cret@h/x", "postgres:/u:***@h/x"),
            (":S3cretPW@h", "***@h"),
            ("postgres:///u:S3cretPW@h/x", "postgres:///u:***@h/x"),
            ("postgres://u:S3cretPW/x", "postgres://u:***/x"),
            ("postgres://u:S3cretPW", "postgres://u:***"),
            ("postgres://u:S3cret:PW@h/x", "postgres://u:***@h/x"),
            ("1postgres://u:S3cretPW@h/x", "***@h/x"),
        ];
        for (raw, redacted) in cases {
            assert_eq!(redact(raw), redacted, "{raw}");
            assert!(!redact(raw).contains("S3cret"), "{raw}");
        }
        // What holds no password is left alone.
        for plain in ["postgres://h:5432/x", "postgres://[::1]:5432/x", "sqlite://racelab.db", "sqlite:racelab.db"] {
            assert_eq!(redact(plain), plain);
        }
    }

    /// Parameters the driver reads as a password, however their name is spelled or encoded.
    #[test]
    fn redacts_secret_looking_parameters() {
        let cases = [
            ("postgres://u@h/x?PASSWORD=S3cretPW", "postgres://u@h/x?PASSWORD=***"),
            ("postgres://u@h/x?pass%77ord=S3cretPW&sslmode=disable", "postgres://u@h/x?pass%77ord=***&sslmode=disable"),
            (
                "postgres://u@h/x?sslmode=disable&sslpassword=S3cretPW",
                "postgres://u@h/x?sslmode=disable&sslpassword=***",
            ),
            ("mysql://u@h/x?Pwd=S3cretPW", "mysql://u@h/x?Pwd=***"),
            ("host=h user=u password=S3cretPW", "host=h user=u password=***"),
            ("postgres://u@h/x?api_token=S3cretPW", "postgres://u@h/x?api_token=***"),
        ];
        for (raw, redacted) in cases {
            assert_eq!(redact(raw), redacted, "{raw}");
        }
        // A segment without a name may be a password typed after the `?`.
        assert_eq!(redact("postgres://u@h/x?S3cretPW&sslmode=disable"), "postgres://u@h/x?***&sslmode=disable");
        // Other parameters, and messages with an `=` in them, are left alone.
        for plain in ["postgres://h/x?sslmode=disable&application_name=a", "expected `a=b`, got `c`"] {
            assert_eq!(redact(plain), plain);
        }
    }

    /// Without an `@`, a URL that does not parse shows nothing after a `user:`.
    #[test]
    fn an_unparsed_url_without_a_host_hides_what_follows_a_colon() {
        for raw in ["postgres:u:S3cretPW", "postgres:/u:S3cretPW", "mariadb:u:S3cretPW", "u:S3cretPW"] {
            let err = DatabaseUrl::parse(raw).map(|u| u.to_string()).unwrap_err().to_string();
            assert!(!err.contains("S3cret"), "{raw}: {err}");
        }
        assert_eq!(redact_unparsed("postgres:/u:S3cretPW"), "postgres:/u:***");
        assert_eq!(redact_unparsed("sqlite:racelab.db"), "sqlite:racelab.db");
        // A driver's message keeps its colons.
        let message = "error communicating with database: Connection refused (os error 111)";
        assert_eq!(redact(message), message);
    }

    /// A URL without `://` shows the part that could not be read, only its password hidden.
    #[test]
    fn a_url_without_its_double_slash_shows_what_was_typed_instead() {
        let cases = [
            ("postgres:/u:S3cretPW@127.0.0.1/x", "postgres:/", "postgres", "`postgres:/u:***@127.0.0.1/x`"),
            ("postgres:u:S3cretPW@127.0.0.1/x", "postgres:", "postgres", "`postgres:u:***@127.0.0.1/x`"),
            ("postgres//u:S3cretPW@127.0.0.1/x", "postgres//", "postgres", "`postgres//u:***@127.0.0.1/x`"),
            ("MariaDB:/root@127.0.0.1/test", "MariaDB:/", "mariadb", "`MariaDB:/root@127.0.0.1/test`"),
            ("postgres:u:S3cretPW", "postgres:", "postgres", "`postgres:u:***`"),
        ];
        for (raw, typed, scheme, shown) in cases {
            let err = DatabaseUrl::parse(raw).unwrap_err().to_string();
            assert!(err.contains(shown), "{raw}: {err}");
            assert!(err.contains(&format!("has `{typed}` where `{scheme}://` belongs")), "{raw}: {err}");
            assert!(!err.contains("S3cret"), "{raw}: {err}");
        }
        // A host-less URL of the right form, and SQLite's short form, are not this mistake.
        assert!(!DatabaseUrl::parse("postgres:///x").unwrap_err().to_string().contains("belongs"));
        assert!(DatabaseUrl::parse("sqlite:racelab.db").is_ok());
    }

    #[test]
    fn parsing_a_malformed_url_never_shows_its_password() {
        for raw in [
            "postgres:/u:S3cretPW@127.0.0.1:1/x",
            "postgres:u:S3cretPW@127.0.0.1:1/x",
            "u:S3cretPW@127.0.0.1:1/x",
            "postgres//u:S3cretPW@127.0.0.1:1/x",
            "postgres://u:S3cretPW/x",
            "S3cretPW:x@h",
        ] {
            match DatabaseUrl::parse(raw) {
                Err(err) => assert!(!err.to_string().contains("S3cret"), "{raw}: {err}"),
                Ok(url) => panic!("{raw} parsed as {url}"),
            }
        }
    }

    #[test]
    fn a_malformed_url_with_an_odd_password_is_refused_without_it() {
        for raw in ["postgres://bob:se/cret@127.0.0.1:5432/x", "mysql://bob:se#cret@h:99999/x"] {
            if let Err(err) = DatabaseUrl::parse(raw) {
                assert!(!err.to_string().contains("cret"), "{err}");
            }
        }
    }

    #[test]
    fn refuses_unknown_scheme_without_leaking_the_password() {
        let err = DatabaseUrl::parse("oracle://u:topsecret@h/x").unwrap_err().to_string();
        assert!(err.contains("unsupported scheme `oracle`"), "{err}");
        assert!(!err.contains("topsecret"), "{err}");
    }

    #[test]
    fn the_command_that_creates_a_database_never_holds_the_password() {
        let command = |raw: &str| DatabaseUrl::parse(raw).unwrap().create_database_command();
        assert_eq!(
            command("postgres://postgres@127.0.0.1/test").unwrap(),
            "psql -h 127.0.0.1 -U postgres -d postgres -tAc \"SELECT 1 FROM pg_database WHERE datname = 'test'\" \
             | grep -q 1 || createdb -h 127.0.0.1 -U postgres test"
        );
        assert_eq!(
            command("postgres://u:S3cret@db:5433/lab?sslmode=disable").unwrap(),
            "psql -h db -p 5433 -U u -d postgres -tAc \"SELECT 1 FROM pg_database WHERE datname = 'lab'\" \
             | grep -q 1 || createdb -h db -p 5433 -U u lab"
        );
        assert_eq!(
            command("mysql://root@127.0.0.1/test").unwrap(),
            "mysql -h127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS test'"
        );
        assert_eq!(
            command("mariadb://bob:S3cret@h:3307/x").unwrap(),
            "mysql -hh -P3307 -ubob -p -e 'CREATE DATABASE IF NOT EXISTS x'"
        );
        assert_eq!(command("postgres://h/"), None);
        assert_eq!(command("sqlite://racelab.db"), None);
    }

    #[test]
    fn mariadb_scheme_is_mysql() {
        let url = DatabaseUrl::parse("mariadb://root@127.0.0.1:3306/test").unwrap();
        assert_eq!(url.backend(), Backend::MySql);
        assert_eq!(url.expose(), "mysql://root@127.0.0.1:3306/test");
    }

    #[test]
    fn a_host_list_is_split_into_one_url_per_host() {
        let url = DatabaseUrl::parse(
            "postgres://u:S3cret@127.0.0.1:5441,127.0.0.1:5442,[::1]:5443/lab?target_session_attrs=read-write&sslmode=disable",
        )
        .unwrap();
        assert_eq!(url.backend(), Backend::Postgres);
        assert!(url.is_multi_host());
        assert_eq!(url.session_target(), Some(SessionTarget::ReadWrite));
        assert_eq!(
            url.host_urls(),
            [
                "postgres://u:S3cret@127.0.0.1:5441/lab?sslmode=disable",
                "postgres://u:S3cret@127.0.0.1:5442/lab?sslmode=disable",
                "postgres://u:S3cret@[::1]:5443/lab?sslmode=disable",
            ]
        );
        assert_eq!(
            url.redacted(),
            "postgres://u:***@127.0.0.1:5441,127.0.0.1:5442,[::1]:5443/lab?target_session_attrs=read-write&sslmode=disable"
        );
        // Without a user, the ports of the list stay readable.
        let url = DatabaseUrl::parse("postgres://127.0.0.1:5441,127.0.0.1:5442/x").unwrap();
        assert_eq!(url.redacted(), "postgres://127.0.0.1:5441,127.0.0.1:5442/x");
        assert_eq!(url.session_target(), None);
        assert_eq!(url.host_urls(), ["postgres://127.0.0.1:5441/x", "postgres://127.0.0.1:5442/x"]);
    }

    #[test]
    fn every_session_target_racelab_honours_is_read() {
        for (value, target) in
            [("any", SessionTarget::Any), ("read-write", SessionTarget::ReadWrite), ("primary", SessionTarget::Primary)]
        {
            let url = DatabaseUrl::parse(&format!("postgres://h/x?target_session_attrs={value}")).unwrap();
            assert_eq!(url.session_target(), Some(target), "{value}");
            assert_eq!(target.as_str(), value);
            // One host with a target is watched too; the driver's URL no longer has the attribute.
            assert!(url.is_multi_host());
            assert_eq!(url.host_urls(), ["postgres://h/x"]);
        }
        let plain = DatabaseUrl::parse("postgres://u@h:5432/x?sslmode=disable").unwrap();
        assert!(!plain.is_multi_host());
        assert_eq!(plain.host_urls(), ["postgres://u@h:5432/x?sslmode=disable"]);
    }

    #[test]
    fn an_attribute_racelab_cannot_honour_is_refused_by_name() {
        let cases = [
            ("target_session_attrs=standby", "`target_session_attrs=standby` is not supported: racelab writes"),
            ("target_session_attrs=prefer-standby", "`target_session_attrs=prefer-standby` is not supported"),
            ("target_session_attrs=read-only", "`target_session_attrs=read-only` is not supported"),
            ("target_session_attrs=master", "racelab honours any, read-write and primary"),
            ("load_balance_hosts=random", "`load_balance_hosts=random` is not supported"),
            ("host=h1,h2", "give several hosts in the URL itself"),
        ];
        for (query, expected) in cases {
            let raw = format!("postgres://u:S3cret@h1:1,h2:2/x?{query}");
            let err = DatabaseUrl::parse(&raw).unwrap_err().to_string();
            assert!(err.contains(expected), "{query}: {err}");
            assert!(!err.contains("S3cret"), "{query}: {err}");
        }
        assert!(DatabaseUrl::parse("postgres://h1:1,h2:2/x?load_balance_hosts=disable").is_ok());
    }

    #[test]
    fn a_bad_host_list_is_refused_naming_the_host() {
        let err = DatabaseUrl::parse("postgres://u:S3cret@h1:1,,h3:3/x").unwrap_err().to_string();
        assert!(err.contains("host 2 of the host list is empty"), "{err}");
        let err = DatabaseUrl::parse("postgres://u:S3cret@h1:1,h2:99999/x").unwrap_err().to_string();
        assert!(err.contains("host 2 of the list"), "{err}");
        assert!(!err.contains("S3cret"), "{err}");
        // A password typed without a host, in a list: its "port" is hidden.
        let err = DatabaseUrl::parse("postgres://u:S3cret,h2:2/x").unwrap_err().to_string();
        assert!(!err.contains("S3cret"), "{err}");
        let err = DatabaseUrl::parse("mysql://root@h1:3311,h2:3312/test").unwrap_err().to_string();
        assert!(err.contains("one URL per node"), "{err}");
    }

    #[test]
    fn malformed_url_is_refused() {
        let err = DatabaseUrl::parse("postgres://u:pw@[bad/x").unwrap_err().to_string();
        assert!(err.contains("malformed"), "{err}");
        assert!(!err.contains(":pw@"), "{err}");
    }
}
