//! [`Failure`]: what ends a command, as the user reads it ("error: ..." and an exit code), with the
//! error that caused it kept as its [`source`](std::error::Error::source) for a maintainer.
//!
//! Turns the errors of the layers below (the flags, the core's connection errors) into the message and
//! exit code a user has always seen, adding the hint that applies to a failed connection. Never prints,
//! and never holds a password in its text: every message is built from errors whose text is already
//! redacted (the core names a URL only without its password), and [`Failure`]'s `Debug` shows the
//! texts of its chain, never a source's own `Debug` (which may hold a URL as typed).

use std::error::Error;
use std::fmt;

use racelab_core::Backend;
use racelab_core::db::{ConnectError, FileProblem, Refusal, UrlError, product};

use crate::config::DatabaseArgsError;

/// The error a command's failure came from.
type Source = Box<dyn Error + Send + Sync + 'static>;

/// A failure that ends the command: a message for the user, an exit code, and the error behind it.
///
/// Its `Display` is the message printed after "error: ", which already says what the source says (as
/// the core's errors do with theirs); [`Error::source`] gives the source itself.
pub struct Failure {
    message: String,
    /// 2 for bad input (as clap uses), 1 for everything else, 0 for a reader that went away.
    code: u8,
    source: Option<Source>,
}

impl Failure {
    /// Bad input: exit code 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: 2, source: None }
    }

    /// Anything else that stops a command: exit code 1.
    pub fn runtime(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: 1, source: None }
    }

    /// Bad input that `err` describes in full: its text is the message.
    pub fn usage_from(err: impl Error + Send + Sync + 'static) -> Self {
        Self::usage(err.to_string()).because(err)
    }

    /// A failure that `err` describes in full: its text is the message.
    pub fn runtime_from(err: impl Error + Send + Sync + 'static) -> Self {
        Self::runtime(err.to_string()).because(err)
    }

    /// Keeps `err` as the cause of this failure (its text is in the message already, where it says so).
    pub fn because(mut self, err: impl Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(err));
        self
    }

    /// Standard output was closed by its reader (`racelab lab | head -1`): nothing left to say to
    /// anyone, so the command ends quietly, as `cat` and `ls` do, rather than panicking.
    pub fn closed_pipe(err: std::io::Error) -> Self {
        Self { message: String::new(), code: 0, source: Some(Box::new(err)) }
    }

    /// The process's exit code.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// Whether there is anything to tell the user (a closed pipe has nothing).
    pub fn is_quiet(&self) -> bool {
        self.message.is_empty()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Failure {
    /// The message, the code and the text of each source in turn: never a source's `Debug`, which may
    /// hold what the user typed, password included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut causes = Vec::new();
        let mut next = self.source();
        while let Some(err) = next {
            causes.push(err.to_string());
            next = err.source();
        }
        f.debug_struct("Failure")
            .field("message", &self.message)
            .field("code", &self.code)
            .field("causes", &causes)
            .finish()
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|err| err as &(dyn Error + 'static))
    }
}

impl From<UrlError> for Failure {
    fn from(err: UrlError) -> Self {
        Failure::usage_from(err)
    }
}

impl From<DatabaseArgsError> for Failure {
    fn from(err: DatabaseArgsError) -> Self {
        Failure::usage_from(err)
    }
}

impl From<ConnectError> for Failure {
    fn from(err: ConnectError) -> Self {
        if let ConnectError::Url(url) = err {
            return url.into();
        }
        match connect_hint(&err) {
            Some(hint) => Failure::runtime(format!("{err}\n  hint: {hint}")).because(err),
            None => Failure::runtime_from(err),
        }
    }
}

/// What to do about a failed connection, said only where it is true: "check that the server runs"
/// only when nothing answered.
fn connect_hint(err: &ConnectError) -> Option<String> {
    let hint = match err {
        ConnectError::Unreachable { backend: Backend::Sqlite, .. } => {
            "check that the file's directory exists and is writable, or set DATABASE_URL / --database-url".to_owned()
        }
        ConnectError::Unreachable { .. } => {
            "check that the server runs and listens at that address, or set DATABASE_URL / --database-url".to_owned()
        }
        ConnectError::Refused { refusal: Refusal::AccessDenied, .. } => {
            "check the user name and password in DATABASE_URL / --database-url, and the user's rights".to_owned()
        }
        ConnectError::Refused { refusal: Refusal::NoSuchDatabase { create_with }, .. } => match create_with {
            Some(command) => format!("create it: {command}"),
            None => "create the database, or name another in DATABASE_URL / --database-url".to_owned(),
        },
        ConnectError::Refused { refusal: Refusal::TooManyConnections, .. } => {
            "the server's max_connections (or the user's connection limit) is reached: close other clients, \
             use fewer --workers, or raise the limit"
                .to_owned()
        }
        ConnectError::OtherProtocol { expected, found, .. } => {
            let scheme = if *found == Backend::Postgres { "postgres://" } else { "mysql://" };
            format!(
                "point the URL at a {} server (by default PostgreSQL listens on port 5432, MariaDB/MySQL on 3306), \
                 or, to use the {} server there, write its URL with {scheme}",
                product(*expected),
                product(*found)
            )
        }
        ConnectError::SqliteFile { problem: FileProblem::DiskFull, path, .. } => {
            format!(
                "free space on the disk that holds {path}, or put the database elsewhere (DATABASE_URL / --database-url)"
            )
        }
        ConnectError::SqliteFile { problem: FileProblem::NotADatabase, path, .. } => format!(
            "{path} is not a SQLite database racelab can use: move it aside (racelab then creates a new one), \
             restore it from a backup, or name another file in DATABASE_URL / --database-url"
        ),
        ConnectError::SqliteFile { problem: FileProblem::ReadOnly, path, .. } => format!(
            "{path} may only be read here: make the file and its directory writable (and drop any mode=ro from \
             the URL), or name a writable place in DATABASE_URL / --database-url"
        ),
        ConnectError::InitStatement { .. } => "fix or remove that --init-sql statement (RACELAB_INIT_SQL)".to_owned(),
        ConnectError::NodeNotReady { .. } => {
            "the Galera node is outside the Primary component or not prepared: use another node, or wait for it \
             to rejoin (scripts/galera status)"
                .to_owned()
        }
        ConnectError::NoPrimary { .. } => {
            "a failover may be under way (a replica is promoted within seconds): try again, or see the cluster's \
             roles (scripts/pgha status, patronictl list)"
                .to_owned()
        }
        ConnectError::ReadOnlyReplica { .. } => {
            "give the primary's address, or every host of the cluster with target_session_attrs=read-write, so that \
             racelab finds the primary itself"
                .to_owned()
        }
        ConnectError::Refused { refusal: Refusal::Other, .. } | ConnectError::Migrate { .. } | ConnectError::Url(_) => {
            return None;
        }
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_printed_and_the_cause_is_kept() {
        let io = std::io::Error::other("disk full");
        let failure = Failure::runtime(format!("cannot write out.json: {io}")).because(io);
        assert_eq!(failure.to_string(), "cannot write out.json: disk full");
        assert_eq!(failure.code(), 1);
        assert_eq!(failure.source().map(ToString::to_string).as_deref(), Some("disk full"));
        assert!(format!("{failure:?}").contains("disk full"));

        let usage = Failure::from(DatabaseArgsError::NoUrl);
        assert_eq!((usage.to_string().as_str(), usage.code()), ("--database-url is empty", 2));
        assert!(usage.source().is_some());
    }
}
