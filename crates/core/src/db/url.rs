//! Database URLs: which backend a URL names, and how to print one without its password.

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
}

/// A database URL that has been checked and knows its backend.
#[derive(Clone)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

impl DatabaseUrl {
    /// Parses a URL and decides its backend. `mariadb://` is accepted as an alias of `mysql://`.
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let raw = raw.trim();
        let Some((scheme, rest)) = raw.split_once(':') else {
            return Err(UrlError::NoScheme { url: redact(raw) });
        };
        let backend = match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Backend::Postgres,
            "mysql" | "mariadb" => Backend::MySql,
            "sqlite" => Backend::Sqlite,
            other => {
                return Err(UrlError::UnknownScheme { url: redact(raw), scheme: other.to_owned() });
            }
        };
        if backend != Backend::Sqlite {
            let parsed =
                url::Url::parse(raw).map_err(|e| UrlError::Malformed { url: redact(raw), reason: e.to_string() })?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(UrlError::Malformed { url: redact(raw), reason: "no host".into() });
            }
        }
        // sqlx's MySQL driver only knows the `mysql` scheme.
        let raw = if backend == Backend::MySql && scheme.eq_ignore_ascii_case("mariadb") {
            format!("mysql:{rest}")
        } else {
            raw.to_owned()
        };
        Ok(Self { raw, backend })
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

/// Replaces the password of a URL (`scheme://user:password@host`) and any `password=` query value with
/// `***`. Works on malformed URLs too, so an error message about a bad URL cannot leak its secret.
pub fn redact(raw: &str) -> String {
    let mut out = raw.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let authority_start = scheme_end + 3;
        // The userinfo ends at the LAST '@': a password may itself hold '/', '?', '#' or '@'. An '@'
        // further on (in a query) only makes this redact more than needed, never less.
        if let Some(at) = out[authority_start..].rfind('@') {
            let userinfo_end = authority_start + at;
            if let Some(colon) = out[authority_start..userinfo_end].find(':') {
                out.replace_range(authority_start + colon + 1..userinfo_end, "***");
            }
        }
    }
    for key in ["password=", "pass=", "pwd="] {
        let mut search_from = 0;
        while let Some(found) = out[search_from..].to_ascii_lowercase().find(key) {
            let start = search_from + found + key.len();
            let end = out[start..].find('&').map_or(out.len(), |i| start + i);
            out.replace_range(start..end, "***");
            search_from = start + 3;
        }
    }
    out
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
    fn mariadb_scheme_is_mysql() {
        let url = DatabaseUrl::parse("mariadb://root@127.0.0.1:3306/test").unwrap();
        assert_eq!(url.backend(), Backend::MySql);
        assert_eq!(url.expose(), "mysql://root@127.0.0.1:3306/test");
    }

    #[test]
    fn malformed_url_is_refused() {
        let err = DatabaseUrl::parse("postgres://u:pw@[bad/x").unwrap_err().to_string();
        assert!(err.contains("malformed"), "{err}");
        assert!(!err.contains(":pw@"), "{err}");
    }
}
