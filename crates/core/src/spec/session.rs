//! A session's connection, on any backend: its statements run under its own notice collector (only
//! PostgreSQL sends notices), and a step runs as a future that gives the connection back.

use std::future::Future;
use std::pin::Pin;

use tracing::Dispatch;
use tracing::instrument::WithSubscriber;

use super::backend::{SpecBackend, StepAnswer};
use super::notice::Inbox;
use super::report::Answer;
use crate::db::DatabaseUrl;

/// A step in flight on a session's connection.
pub(crate) type StepFuture<C> = Pin<Box<dyn Future<Output = (C, StepAnswer)> + Send>>;

/// One session: its connection (away while a step runs on it), server id and notices.
pub(crate) struct SessionConn<B: SpecBackend> {
    pub conn: Option<B::Conn>,
    pub id: i64,
    pub inbox: Inbox,
    dispatch: Dispatch,
}

impl<B: SpecBackend> SessionConn<B> {
    pub(crate) async fn open(url: &DatabaseUrl, name: &str) -> Result<Self, sqlx::Error> {
        let inbox = Inbox::default();
        let dispatch = inbox.dispatch();
        let mut conn = B::connect(url, name).with_subscriber(dispatch.clone()).await?;
        let id = B::session_id(&mut conn).await?;
        Ok(SessionConn { conn: Some(conn), id, inbox, dispatch })
    }

    /// `sql` on this session's connection, as a future that gives the connection back with the
    /// answer; `None` if a step is already running here. Not a task: like a libpq connection, it
    /// reads from the server only while the runner polls it, so a notice the server sent before a
    /// step blocked is read when the runner next looks at that step, as isolationtester reads it.
    pub(crate) fn start(&mut self, sql: &str) -> Option<StepFuture<B::Conn>> {
        let mut conn = self.conn.take()?;
        let sql = sql.to_owned();
        let work = async move {
            let answer = B::execute_step(&mut conn, &sql).await;
            (conn, answer)
        };
        Some(Box::pin(work.with_subscriber(self.dispatch.clone())))
    }

    /// Runs `sql` (a session's setup or teardown) and waits for it: only the last result is kept, as
    /// `PQexec` keeps it.
    pub(crate) async fn exec(&mut self, sql: &str) -> Option<Answer> {
        let conn = self.conn.as_mut()?;
        Some(B::execute(conn, sql, true).with_subscriber(self.dispatch.clone()).await)
    }
}

/// Runs `sql` on the control connection (a setup or teardown; its notices are dropped, as
/// isolationtester drops them): only the last result is kept, as `PQexec` keeps it.
pub(crate) async fn exec_control<B: SpecBackend>(conn: &mut B::Conn, sql: &str) -> Answer {
    B::execute(conn, sql, true).with_subscriber(tracing::subscriber::NoSubscriber::default()).await
}
