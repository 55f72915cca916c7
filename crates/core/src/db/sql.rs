//! The statements every backend runs alike, each written once, and what differs between the dialects'
//! SQL as data ([`Sql`]): how a parameter is written, how `like` (a reserved word) is quoted, the
//! current time, the upsert clause, how a statement hands back a value it wrote, the cast to BIGINT.
//!
//! Each dialect renders its [`Statements`] once, on first use, and keeps them for the life of the
//! process, so a statement is a `&'static str` (prepared and cached by the driver like a literal).
//! Only statement text is made here: nothing runs SQL, and nothing here ever interpolates a value
//! (every value is a bound parameter).

use super::LockMode;

/// How a bound parameter is written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placeholder {
    /// `$1, $2, ...` (PostgreSQL).
    Dollar,
    /// `?, ?, ...`, bound in order (MariaDB/MySQL).
    Question,
    /// `?1, ?2, ...` (SQLite).
    NumberedQuestion,
}

/// How an insert that finds its key taken becomes an update (or nothing).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Upsert {
    /// `ON CONFLICT (key) DO UPDATE SET` / `DO NOTHING`. `qualify`: the update names the existing
    /// row through the alias `s` (PostgreSQL would find an unqualified column ambiguous).
    OnConflict { qualify: bool },
    /// `ON DUPLICATE KEY UPDATE` (MariaDB/MySQL).
    OnDuplicateKey,
}

/// How a writing statement hands back the value it wrote.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Returning {
    /// `... RETURNING col`: the value comes back as a row.
    Clause,
    /// `LAST_INSERT_ID(expr)` around the value: it comes back in the OK packet (MariaDB/MySQL has no
    /// `UPDATE ... RETURNING`).
    LastInsertId,
}

/// What differs between the dialects' SQL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sql {
    pub placeholder: Placeholder,
    /// The `like` column, quoted: `"like"`, or `` `like` `` on MariaDB/MySQL.
    pub like: &'static str,
    /// The current time, as `modified_at` stores it.
    pub now: &'static str,
    pub upsert: Upsert,
    pub returning: Returning,
    /// The cast of a sum of BIGINTs back to BIGINT: `(` and `)::BIGINT`, `CAST(` and ` AS SIGNED)`,
    /// or nothing where the sum already is one.
    pub bigint: (&'static str, &'static str),
    /// A duplicate key aborts the whole transaction (PostgreSQL): an insert that may meet one says
    /// `ON CONFLICT DO NOTHING` instead, so a batch goes on with its other likes.
    pub duplicate_aborts_transaction: bool,
    /// Integer arithmetic past 2^63 - 1 raises an error (PostgreSQL 22003, MariaDB 1690). SQLite's
    /// does not: it silently makes the result a REAL, which an INTEGER column then stores. Where it
    /// does not raise, a sum a statement writes is guarded (see [`Sql::checked`]).
    pub overflow_raises: bool,
    /// The database locks rows (`SELECT ... FOR UPDATE`); SQLite locks the whole database instead.
    pub row_locks: bool,
    /// What a quoted identifier is written between: `"` (standard SQL), or `` ` `` on MariaDB/MySQL
    /// (where `"` quotes a string unless `ANSI_QUOTES` is set).
    pub ident_quote: char,
}

/// The largest BIGINT, as SQL writes it.
const MAX: &str = "9223372036854775807";

/// The statements of one dialect, rendered from [`Sql`].
#[derive(Debug)]
pub(crate) struct Statements {
    pub commit: &'static str,
    pub rollback: &'static str,
    pub read: String,
    /// `FOR UPDATE` with each [`LockMode`], in the order of [`LockMode::ALL`] (never sent by SQLite,
    /// which has no row locks: its locking read is a plain read under `BEGIN IMMEDIATE`).
    pub read_for_update: [String; 3],
    pub load: String,
    pub write: String,
    pub write_if_version: String,
    pub delete_if_version: String,
    pub increment_by: String,
    pub insert_idempotency_key: String,
    pub save_idempotent_response: String,
    pub idempotent_response: String,
    pub increment_slot_by: String,
    pub read_total: String,
    pub clear_slots: String,
    pub ensure_post: String,
    pub reset_post: String,
}

impl Statements {
    pub(crate) fn new(sql: &Sql) -> Self {
        let Sql { like, now, .. } = *sql;
        let read = format!("SELECT {like}, version FROM posts WHERE pk = ?");
        let lock = |clause: &str| sql.render(&format!("{read} {clause}"));
        let next_version = |old: &str| sql.checked(&format!("{old}version + 1"), &format!("{old}version < {MAX}"));
        let version = next_version("");
        let write = format!("UPDATE posts SET {like} = ?, version = {version}, modified_at = {now} WHERE pk = ?");
        let (cast, cast_end) = sql.bigint;
        let (alias, old) = sql.existing_row();
        let mut insert_key =
            "INSERT INTO idempotency_keys (idempotency_key, fingerprint, status, body) VALUES (?, ?, 0, '')".to_owned();
        if sql.duplicate_aborts_transaction {
            insert_key.push_str(" ON CONFLICT (idempotency_key) DO NOTHING");
        }
        Self {
            commit: "COMMIT",
            rollback: "ROLLBACK",
            read_for_update: LockMode::ALL.map(|mode| match mode {
                LockMode::Wait => lock("FOR UPDATE"),
                LockMode::NoWait => lock("FOR UPDATE NOWAIT"),
                LockMode::SkipLocked => lock("FOR UPDATE SKIP LOCKED"),
            }),
            read: sql.render(&read),
            load: sql.render(&format!("SELECT pk, {like}, version, modified_at FROM posts WHERE pk = ?")),
            write_if_version: sql.render(&format!("{write} AND version = ?")),
            write: sql.render(&write),
            delete_if_version: sql.render("DELETE FROM posts WHERE pk = ? AND version = ?"),
            // The guard keeps the sum from passing the maximum on every backend alike: no row
            // written, then a read tells a full counter from a missing post (`common::increment_by`).
            increment_by: sql.render(&format!(
                "UPDATE posts SET {like} = {}, version = {version}, modified_at = {now} \
                 WHERE pk = ? AND {like} <= {MAX} - ?{}",
                sql.returned(&format!("{like} + ?")),
                sql.returning(like),
            )),
            insert_idempotency_key: sql.render(&insert_key),
            save_idempotent_response: sql
                .render("UPDATE idempotency_keys SET status = ?, body = ? WHERE idempotency_key = ?"),
            idempotent_response: sql
                .render("SELECT fingerprint, status, body FROM idempotency_keys WHERE idempotency_key = ?"),
            // A slot's own `like` past the maximum: raised, or refused by SQLite's guard, which reads
            // the amount as the value the insert proposed (`excluded`), the same bound parameter.
            increment_slot_by: sql.render(&format!(
                "INSERT INTO post_slots{alias} (post, slot, {like}, version) VALUES (?, ?, {}, 1) \
                 {} {like} = {}, version = {}{}",
                sql.returned("?"),
                sql.update_on_conflict("post, slot"),
                sql.returned(&sql.checked(
                    &format!("{old}{like} + ?"),
                    &format!("{old}{like} <= {MAX} - excluded.{like}")
                )),
                next_version(old),
                sql.returning(like),
            )),
            // One statement, so one snapshot: the post and its slots as of the same moment. Grouped by
            // every column of `p` read (all determined by its key): MariaDB does not infer that. The
            // post's own values and its slots' sums come back apart, and are added by the caller with
            // a check: added here, a total past the maximum would raise on PostgreSQL, be clamped by
            // MariaDB's cast and become a REAL on SQLite.
            read_total: sql.render(&format!(
                "SELECT p.{like}, {cast}COALESCE(SUM(s.{like}), 0){cast_end}, \
                 p.version, {cast}COALESCE(SUM(s.version), 0){cast_end} \
                 FROM posts p LEFT JOIN post_slots s ON s.post = p.pk \
                 WHERE p.pk = ? GROUP BY p.pk, p.{like}, p.version"
            )),
            clear_slots: sql.render("DELETE FROM post_slots WHERE post = ?"),
            ensure_post: sql.render(&format!("INSERT INTO posts (pk) VALUES (?) {}", sql.nothing_on_conflict("pk"))),
            reset_post: sql.render(&format!(
                "INSERT INTO posts (pk, {like}, version) VALUES (?, 0, 0) {} {like} = 0, version = 0, modified_at = {now}",
                sql.update_on_conflict("pk"),
            )),
        }
    }
}

impl Sql {
    /// A [`super::statement::Statement`]'s text as this dialect runs it: its tokens (`{for_update}`,
    /// `{returning_id}`) replaced, and each `?` written as this dialect's placeholder.
    pub(crate) fn render_statement(&self, text: &str) -> String {
        let for_update = if self.row_locks { " FOR UPDATE" } else { "" };
        let returning_id = match self.returning {
            Returning::Clause => " RETURNING id",
            Returning::LastInsertId => "",
        };
        self.render(&text.replace("{for_update}", for_update).replace("{returning_id}", returning_id))
    }

    /// `text` with each `?` written as this dialect's placeholder, numbered in order.
    fn render(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 8);
        let mut n = 0;
        for ch in text.chars() {
            if ch != '?' {
                out.push(ch);
                continue;
            }
            n += 1;
            match self.placeholder {
                Placeholder::Dollar => out.push_str(&format!("${n}")),
                Placeholder::Question => out.push('?'),
                Placeholder::NumberedQuestion => out.push_str(&format!("?{n}")),
            }
        }
        out
    }

    /// `sum`, a value a statement writes, kept from passing the maximum where the database would not
    /// refuse it: on SQLite it is NULL unless `fits` holds, and the column's NOT NULL then refuses the
    /// write (SQLITE_CONSTRAINT_NOTNULL, 1299, classified as a counter overflow). Elsewhere the sum
    /// itself raises.
    fn checked(&self, sum: &str, fits: &str) -> String {
        if self.overflow_raises { sum.to_owned() } else { format!("CASE WHEN {fits} THEN {sum} END") }
    }

    /// The start of an upsert's update, for a conflict on `key`.
    fn update_on_conflict(&self, key: &str) -> String {
        match self.upsert {
            Upsert::OnConflict { .. } => format!("ON CONFLICT ({key}) DO UPDATE SET"),
            Upsert::OnDuplicateKey => "ON DUPLICATE KEY UPDATE".to_owned(),
        }
    }

    /// An insert's clause that does nothing when `key` (a single column) is taken.
    fn nothing_on_conflict(&self, key: &str) -> String {
        match self.upsert {
            Upsert::OnConflict { .. } => format!("ON CONFLICT ({key}) DO NOTHING"),
            Upsert::OnDuplicateKey => format!("ON DUPLICATE KEY UPDATE {key} = {key}"),
        }
    }

    /// The alias of an upsert's table, and the prefix naming its existing row in the update.
    fn existing_row(&self) -> (&'static str, &'static str) {
        match self.upsert {
            Upsert::OnConflict { qualify: true } => (" AS s", "s."),
            _ => ("", ""),
        }
    }

    /// `expr`, as a value the statement hands back.
    fn returned(&self, expr: &str) -> String {
        match self.returning {
            Returning::Clause => expr.to_owned(),
            Returning::LastInsertId => format!("LAST_INSERT_ID({expr})"),
        }
    }

    /// The clause that hands back `column`, if the dialect has one.
    fn returning(&self, column: &str) -> String {
        match self.returning {
            Returning::Clause => format!(" RETURNING {column}"),
            Returning::LastInsertId => String::new(),
        }
    }
}
