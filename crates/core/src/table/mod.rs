//! The counter's and the stock's strategies on **your own table**: a table, a key column and an
//! integer value column you name, on PostgreSQL, MariaDB/MySQL or SQLite.
//!
//! The names are checked ([`IdentError`]) and quoted as each database quotes identifiers, so a
//! reserved word works and no name can escape its quotes; every value is a bound parameter. The
//! strategies are the ones `racelab lab` measures (`--workload counter` and `--workload stock`),
//! each a unit of work on a session of its own, retried under a [`RetryPolicy`] when it retries.
//!
//! ```
//! use racelab_core::table::{Take, UserTable};
//! use racelab_core::workload::StockStrategy;
//! use racelab_core::{ConnectOptions, Database, DatabaseUrl, Strategy};
//! # use sqlx::{Connection, Executor};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let path = std::env::temp_dir().join(format!("racelab-table-doc-{}.db", std::process::id()));
//! # let url = format!("sqlite://{}", path.display());
//! # let mut setup = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc")).await?;
//! # setup.execute("CREATE TABLE inventory (sku TEXT PRIMARY KEY, on_hand INTEGER NOT NULL); \
//! #     INSERT INTO inventory VALUES ('mug', 2)").await?;
//! # setup.close().await?;
//! // Your table: inventory(sku TEXT PRIMARY KEY, on_hand INTEGER NOT NULL), with 2 mugs.
//! let db = Database::connect(ConnectOptions::new(DatabaseUrl::parse(&url)?)).await?;
//! let inventory = UserTable::new(db.backend(), "inventory", "sku", "on_hand")?;
//!
//! // Restock one mug, by one UPDATE (`on_hand = on_hand + 1`): no lost update whoever else writes.
//! let restocked = inventory.counter(Strategy::Atomic)?.add(&db, "mug", 1).await;
//! assert_eq!(restocked.result?, 3);
//!
//! // Sell: `UPDATE ... SET on_hand = on_hand - 1 WHERE sku = ? AND on_hand >= 1`, never below zero.
//! let sell = inventory.stock(StockStrategy::Conditional);
//! for _ in 0..3 {
//!     assert_eq!(sell.take(&db, "mug", 1).await.result?, Take::Taken);
//! }
//! assert_eq!(sell.take(&db, "mug", 1).await.result?, Take::Refused, "sold out: an answer, not an error");
//! assert_eq!(inventory.value(&db, "mug").await?, 0);
//! # db.close().await;
//! # for suffix in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{suffix}", path.display())); }
//! # Ok(())
//! # }
//! ```

/// The counter's strategies on your table: add an amount to a row.
mod counter;
/// Checking the names a caller gives.
mod ident;
/// The stock's strategies on your table: take an amount if it is there.
mod stock;

use std::fmt;
use std::sync::Arc;

pub use self::counter::TableCounter;
pub use self::ident::{IdentError, MAX_NAME_LEN};
pub use self::stock::{TableStock, Take};
use crate::db::{Arg, Backend, Database, UserTableSql};
use crate::error::{DbError, ErrorKind};
use crate::retry::RetryPolicy;
use crate::strategy::Strategy;
use crate::workload::StockStrategy;

/// A table of yours: a key column and an integer value column, on one kind of database.
#[derive(Debug, Clone)]
pub struct UserTable {
    backend: Backend,
    sql: Arc<UserTableSql>,
}

impl UserTable {
    /// `table` (or `schema.table`), its `key` column and its integer `value` column, on `backend`.
    pub fn new(backend: Backend, table: &str, key: &str, value: &str) -> Result<Self, IdentError> {
        let parts = ident::check_table(table)?;
        ident::check("key column", key)?;
        ident::check("value column", value)?;
        Ok(Self { backend, sql: Arc::new(UserTableSql::new(backend, &parts, key, value)) })
    }

    /// The counter's `strategy` on this table, retried (where it retries) under the default policy.
    pub fn counter(&self, strategy: Strategy) -> Result<TableCounter, TableError> {
        TableCounter::new(self.clone(), strategy)
    }

    /// The stock's `strategy` on this table, retried (where it retries) under the default policy.
    pub fn stock(&self, strategy: StockStrategy) -> TableStock {
        TableStock::new(self.clone(), strategy)
    }

    /// The row's value, now.
    pub async fn value(&self, db: &Database, key: impl Into<Key>) -> Result<i64, DbError> {
        self.check_backend(db)?;
        let key = key.into();
        db.session().await?.user_read(&self.sql, key.arg()).await
    }

    /// A table made for one kind of database runs on that kind only (its names are quoted for it).
    fn check_backend(&self, db: &Database) -> Result<(), DbError> {
        if db.backend() == self.backend {
            return Ok(());
        }
        Err(DbError::new(
            ErrorKind::Other,
            format!(
                "{} was named for {}, not {}: make a UserTable for this database",
                self.sql.name,
                self.backend,
                db.backend()
            ),
        ))
    }
}

/// A row's key: an integer or a text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Int(i64),
    Text(String),
}

impl Key {
    fn arg(&self) -> Arg<'_> {
        match self {
            Key::Int(k) => Arg::Int(*k),
            Key::Text(k) => Arg::Text(k),
        }
    }
}

impl From<i64> for Key {
    fn from(key: i64) -> Self {
        Key::Int(key)
    }
}

impl From<&str> for Key {
    fn from(key: &str) -> Self {
        Key::Text(key.to_owned())
    }
}

impl From<String> for Key {
    fn from(key: String) -> Self {
        Key::Text(key)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(k) => write!(f, "{k}"),
            Key::Text(k) => write!(f, "{k:?}"),
        }
    }
}

/// A strategy that cannot run on a table of yours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("the {strategy} strategy cannot run on your table: {why}")]
    Unsupported { strategy: Strategy, why: &'static str },
}

/// The policy a strategy is retried under: `policy` if it retries, one attempt if not.
fn policy_for(retries: bool, policy: RetryPolicy) -> RetryPolicy {
    if retries { policy } else { RetryPolicy::no_retry() }
}
