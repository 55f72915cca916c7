//! A PostgreSQL URL with several hosts (or a `target_session_attrs`), kept on the host it asks for, as
//! libpq does: the hosts are tried in order and the first that accepts writes (`read-write`: `SHOW
//! transaction_read_only` is off; `primary`: `pg_is_in_recovery()` is false; `any`: it answers) is the
//! one the pool connects to. After a Patroni failover, the old primary is gone (or back as a replica)
//! and new connections must find the new one.
//!
//! sqlx's pool knows one host, and has no hook to connect elsewhere; it does let its connect options be
//! replaced ([`sqlx::Pool::set_connect_options`]), and reads them again on each attempt. So a watcher
//! task keeps one connection of its own to the serving host and asks it every [`CHECK_EVERY`] whether it
//! still qualifies; once it does not (or cannot answer), the hosts are tried again in order, until one
//! qualifies, and the pool's options are pointed at it. Meanwhile [`Hosts::state`] says `no primary`,
//! and sessions wait for one (see `Database::session`) instead of failing at once. Every new pooled
//! connection is checked too (the `after_connect` hook): one opened on a host that has just become a
//! replica is refused, and the watcher told at once.
//!
//! Messages name hosts by their place in the URL (host 2) and their address, never the password.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{ConnectOptions as _, Connection as _, PgConnection};
use tokio::sync::{Notify, watch};

use super::SessionTarget;

/// How often the watcher asks the serving host whether it still qualifies.
pub const CHECK_EVERY: Duration = Duration::from_millis(100);
/// How long one host may take to accept a connection and answer the check, while the hosts are tried.
const PER_HOST: Duration = Duration::from_secs(2);
/// Pause between two rounds over the hosts while none qualifies (a promotion takes seconds).
const ROUND_PAUSE: Duration = Duration::from_millis(100);

/// Which host serves, as the watcher saw it last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// Host `n` (from 0, in the URL's order) qualifies: new connections go there.
    Serving(usize),
    /// No host qualifies now: `replicas` of them answered and refuse writes (read-only), the others
    /// did not answer.
    NoPrimary { replicas: usize },
}

/// What a host that does not qualify said when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostAnswer {
    /// It answered, and its sessions are read-only (a replica, in recovery).
    ReadOnly,
    /// It did not answer: the driver's message, redacted.
    Unreachable(String),
}

/// The hosts of one URL and the one serving now.
pub(crate) struct Hosts {
    options: Vec<PgConnectOptions>,
    /// `host:port` of each, for messages (no user, no password).
    labels: Vec<String>,
    target: SessionTarget,
    state: watch::Sender<HostState>,
    /// Wakes the watcher before its next [`CHECK_EVERY`]: a pooled connection found its host read-only.
    recheck: Notify,
}

impl Hosts {
    pub(crate) fn new(options: Vec<PgConnectOptions>, target: SessionTarget) -> Self {
        let labels = options.iter().map(|o| format!("{}:{}", o.get_host(), o.get_port())).collect();
        Self {
            options,
            labels,
            target,
            state: watch::Sender::new(HostState::NoPrimary { replicas: 0 }),
            recheck: Notify::new(),
        }
    }

    /// `host:port` of host `n` (from 0).
    pub(crate) fn label(&self, n: usize) -> &str {
        self.labels.get(n).map_or("?", String::as_str)
    }

    pub(crate) fn target(&self) -> SessionTarget {
        self.target
    }

    /// The connect options of host `n`.
    pub(crate) fn options(&self, n: usize) -> &PgConnectOptions {
        &self.options[n]
    }

    /// Which host serves now.
    pub(crate) fn state(&self) -> HostState {
        *self.state.borrow()
    }

    /// Tells the watcher to ask the serving host again now.
    pub(crate) fn recheck(&self) {
        self.recheck.notify_one();
    }

    /// Waits until a host serves, up to `deadline`; `None` when none did in time.
    pub(crate) async fn serving(&self, deadline: tokio::time::Instant) -> Option<usize> {
        let mut rx = self.state.subscribe();
        let waited = tokio::time::timeout_at(deadline, rx.wait_for(|s| matches!(s, HostState::Serving(_)))).await;
        match waited {
            Ok(Ok(state)) => match *state {
                HostState::Serving(n) => Some(n),
                HostState::NoPrimary { .. } => None,
            },
            _ => None,
        }
    }

    /// Resolves once host `n` no longer serves (the watcher moved on, or lost it).
    pub(crate) async fn left(&self, n: usize) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(|s| *s != HostState::Serving(n)).await;
    }

    /// Asks an open connection whether its host qualifies.
    pub(crate) async fn qualifies(target: SessionTarget, conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
        match target {
            SessionTarget::Any => conn.ping().await.map(|()| true),
            SessionTarget::ReadWrite => sqlx::query_scalar::<_, String>("SHOW transaction_read_only")
                .fetch_one(&mut *conn)
                .await
                .map(|read_only| read_only == "off"),
            SessionTarget::Primary => sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()")
                .fetch_one(&mut *conn)
                .await
                .map(|in_recovery| !in_recovery),
        }
    }

    /// Host `n`: a connection to it, if it qualifies, or what it answered.
    async fn try_host(&self, n: usize) -> Result<PgConnection, HostAnswer> {
        let attempt = async {
            let mut conn =
                self.options[n].connect().await.map_err(|e| HostAnswer::Unreachable(super::redact(&e.to_string())))?;
            match Self::qualifies(self.target, &mut conn).await {
                Ok(true) => Ok(conn),
                Ok(false) => {
                    let _ = conn.close().await;
                    Err(HostAnswer::ReadOnly)
                }
                Err(e) => Err(HostAnswer::Unreachable(super::redact(&e.to_string()))),
            }
        };
        match tokio::time::timeout(PER_HOST, attempt).await {
            Ok(result) => result,
            Err(_) => Err(HostAnswer::Unreachable(format!("no answer within {} s", PER_HOST.as_secs()))),
        }
    }

    /// One round over the hosts in order: the first that qualifies, with a connection to it, or what
    /// each one answered.
    pub(crate) async fn find(&self) -> Result<(usize, PgConnection), Vec<HostAnswer>> {
        let mut answers = Vec::with_capacity(self.options.len());
        for n in 0..self.options.len() {
            match self.try_host(n).await {
                Ok(conn) => return Ok((n, conn)),
                Err(answer) => answers.push(answer),
            }
        }
        Err(answers)
    }

    /// Host `n` serves, through `conn`: points the pool at it and watches it until the watcher is
    /// stopped (the task ends with the last `Database` holding it, see [`WatchGuard`]).
    pub(crate) fn watch(self: &Arc<Self>, pool: PgPool, n: usize, conn: PgConnection) -> WatchGuard {
        pool.set_connect_options(self.options[n].clone());
        self.state.send_replace(HostState::Serving(n));
        let hosts = self.clone();
        WatchGuard(tokio::spawn(async move { hosts.keep_watching(pool, n, conn).await }))
    }

    async fn keep_watching(&self, pool: PgPool, mut serving: usize, mut conn: PgConnection) {
        loop {
            // Serving: asked every CHECK_EVERY, or at once when a pooled connection found it read-only.
            loop {
                tokio::select! {
                    () = tokio::time::sleep(CHECK_EVERY) => {}
                    () = self.recheck.notified() => {}
                }
                match tokio::time::timeout(PER_HOST, Self::qualifies(self.target, &mut conn)).await {
                    Ok(Ok(true)) => continue,
                    _ => break,
                }
            }
            tracing::warn!(
                host = serving + 1,
                address = self.label(serving),
                "the serving host no longer qualifies: trying the hosts again"
            );
            // Sessions wait for a host from now on, rather than connect to this one.
            self.state.send_replace(HostState::NoPrimary { replicas: 0 });
            let _ = conn.close_hard().await;
            // No host until one qualifies again.
            loop {
                match self.find().await {
                    Ok((n, found)) => {
                        pool.set_connect_options(self.options[n].clone());
                        self.state.send_replace(HostState::Serving(n));
                        tracing::warn!(host = n + 1, address = self.label(n), "serving host found");
                        serving = n;
                        conn = found;
                        break;
                    }
                    Err(answers) => {
                        let replicas = answers.iter().filter(|a| **a == HostAnswer::ReadOnly).count();
                        self.state.send_replace(HostState::NoPrimary { replicas });
                        tokio::time::sleep(ROUND_PAUSE).await;
                    }
                }
            }
        }
    }
}

/// Ends the watcher when dropped.
pub(crate) struct WatchGuard(tokio::task::JoinHandle<()>);

/// The hosts and their watcher, shared by every clone of one `Database`: the watcher ends with the last.
pub(crate) struct Watched {
    pub(crate) hosts: Arc<Hosts>,
    pub(crate) _watcher: WatchGuard,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What each host answered, for a message: "host 1 (127.0.0.1:5441): read-only; host 2 (...): ...".
pub(crate) fn describe(hosts: &Hosts, answers: &[HostAnswer]) -> String {
    answers
        .iter()
        .enumerate()
        .map(|(n, answer)| {
            let said = match answer {
                HostAnswer::ReadOnly => "read-only (a replica)".to_owned(),
                HostAnswer::Unreachable(message) => message.clone(),
            };
            format!("host {} ({}): {said}", n + 1, hosts.label(n))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
