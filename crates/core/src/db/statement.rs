//! [`Statement`]: a statement written once, with `?` for each parameter, and rendered for each dialect
//! the first time that dialect runs it (then kept for the life of the process, so the driver prepares
//! and caches it like a literal).
//!
//! For statements that are not the counter's (the workloads' own, in [`super::workloads`]): they say
//! what differs between the dialects with two tokens, and nothing else:
//! - `{for_update}`: ` FOR UPDATE` where the database has row locks, nothing on SQLite (whose locking
//!   transaction, `BEGIN IMMEDIATE`, holds the whole database's write lock);
//! - `{returning_id}`: ` RETURNING id` where an insert can hand back its key, nothing on MariaDB/MySQL
//!   (whose key comes back in the OK packet: `LAST_INSERT_ID()`).
//!
//! Never holds a value: every value is a bound parameter.

use std::sync::OnceLock;

use super::Dialect;

/// A statement written once for every backend (see the module's docs for its tokens).
pub(crate) struct Statement {
    text: &'static str,
    /// One rendering per dialect, at the dialect's [`Dialect::SLOT`].
    rendered: [OnceLock<String>; 3],
}

impl Statement {
    pub(crate) const fn new(text: &'static str) -> Self {
        Self { text, rendered: [OnceLock::new(), OnceLock::new(), OnceLock::new()] }
    }

    /// The statement as dialect `D` runs it.
    pub(crate) fn text_for<D: Dialect>(&'static self) -> &'static str {
        self.rendered[D::SLOT].get_or_init(|| D::sql().render_statement(self.text)).as_str()
    }
}
