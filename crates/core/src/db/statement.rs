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
    /// An insert's rendering writing [`Statement::ROWS`] rows at once, per dialect.
    rows_rendered: [OnceLock<String>; 3],
}

impl Statement {
    /// The rows [`Statement::rows_text_for`] writes in one statement: a hundred rows in one round trip
    /// and one parse, well under every backend's limit on parameters.
    pub(crate) const ROWS: usize = 100;

    pub(crate) const fn new(text: &'static str) -> Self {
        Self {
            text,
            rendered: [OnceLock::new(), OnceLock::new(), OnceLock::new()],
            rows_rendered: [OnceLock::new(), OnceLock::new(), OnceLock::new()],
        }
    }

    /// The statement as dialect `D` runs it.
    pub(crate) fn text_for<D: Dialect>(&'static self) -> &'static str {
        self.rendered[D::SLOT].get_or_init(|| D::sql().render_statement(self.text)).as_str()
    }

    /// An insert written `... VALUES (...) ...` as dialect `D` runs it for [`Statement::ROWS`] rows:
    /// its row of values repeated, each with its own parameters.
    pub(crate) fn rows_text_for<D: Dialect>(&'static self) -> &'static str {
        self.rows_rendered[D::SLOT]
            .get_or_init(|| D::sql().render_statement(&repeat_values(self.text, Self::ROWS)))
            .as_str()
    }
}

/// `text`, an insert of one row, as the insert of `rows` rows: its `VALUES (...)` written `rows` times.
/// The workloads' inserts name no function in their values, so the row ends at the first `)`.
fn repeat_values(text: &str, rows: usize) -> String {
    let Some((head, tail)) = text.split_once(" VALUES (") else {
        panic!("a multi-row insert is written `INSERT ... VALUES (...)`: {text}")
    };
    let Some((values, rest)) = tail.split_once(')') else { panic!("an insert's VALUES is not closed: {text}") };
    let row = format!("({values})");
    format!("{head} VALUES {}{rest}", vec![row; rows].join(", "))
}

#[cfg(test)]
mod tests {
    use super::repeat_values;

    #[test]
    fn an_insert_of_one_row_becomes_one_of_several() {
        assert_eq!(
            repeat_values("INSERT INTO t (a, b) VALUES (?, 0){returning_id}", 3),
            "INSERT INTO t (a, b) VALUES (?, 0), (?, 0), (?, 0){returning_id}"
        );
        assert_eq!(repeat_values("INSERT INTO r (v) VALUES (0)", 2), "INSERT INTO r (v) VALUES (0), (0)");
    }
}
