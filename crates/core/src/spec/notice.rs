//! The notices a session's server sends (`RAISE NOTICE`, `DROP ... IF EXISTS` skipping, warnings),
//! caught as they arrive.
//!
//! sqlx hands a PostgreSQL notice to `tracing` (target `sqlx::postgres::notice`, the severity as the
//! level) and to nobody else. A [`NoticeCollector`] is a `tracing` subscriber that keeps those events
//! and nothing else; a session's statements run under its own collector (`WithSubscriber`), so each
//! notice lands in the session that received it, in arrival order, whatever else is logging.

use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};

const TARGET: &str = "sqlx::postgres::notice";

/// One notice: its severity as the server names it and its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub severity: String,
    pub message: String,
}

/// The notices of one connection, shared between the task that runs its statements and the runner.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inbox(Arc<Mutex<Vec<Notice>>>);

impl Inbox {
    /// Takes every notice received since the last call.
    pub(crate) fn take(&self) -> Vec<Notice> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A dispatcher whose subscriber puts this connection's notices here.
    pub(crate) fn dispatch(&self) -> Dispatch {
        Dispatch::new(NoticeCollector { inbox: self.clone() })
    }
}

struct NoticeCollector {
    inbox: Inbox,
}

/// sqlx maps severities onto levels; this maps them back (INFO and LOG share a level: INFO, the one
/// a client is sent without changing `client_min_messages`).
fn severity(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "NOTICE",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "INFO",
    }
}

struct MessageField(Option<String>);

impl Visit for MessageField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && self.0.is_none() {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl Subscriber for NoticeCollector {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == TARGET
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let mut message = MessageField(None);
        event.record(&mut message);
        let notice =
            Notice { severity: severity(event.metadata().level()).to_owned(), message: message.0.unwrap_or_default() };
        self.inbox.0.lock().unwrap_or_else(PoisonError::into_inner).push(notice);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
