//! The `stock` workload's SQL: one item row (`stock_items`) per run, whose `qty` buyers take one at a
//! time. The table's `CHECK (qty >= 0)` is what the `check-constraint` strategy relies on; every other
//! strategy checks the stock itself (or does not, which is what `naive` shows).

use super::super::{Arg, Session, Statement};
use crate::error::{DbError, ErrorKind};

static CREATE: Statement = Statement::new("INSERT INTO stock_items (qty, version) VALUES (?, 0){returning_id}");
static READ: Statement = Statement::new("SELECT qty, version FROM stock_items WHERE id = ?");
static READ_FOR_UPDATE: Statement = Statement::new("SELECT qty, version FROM stock_items WHERE id = ?{for_update}");
static WRITE: Statement = Statement::new("UPDATE stock_items SET qty = ?, version = version + 1 WHERE id = ?");
static WRITE_IF_VERSION: Statement =
    Statement::new("UPDATE stock_items SET qty = ?, version = version + 1 WHERE id = ? AND version = ?");
static TAKE_IF_IN_STOCK: Statement =
    Statement::new("UPDATE stock_items SET qty = qty - 1, version = version + 1 WHERE id = ? AND qty >= 1");
static TAKE: Statement = Statement::new("UPDATE stock_items SET qty = qty - 1, version = version + 1 WHERE id = ?");
static STATE: Statement = Statement::new("SELECT qty, version FROM stock_items WHERE id = ?");

/// An item's stock and the count of writes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockRow {
    pub qty: i64,
    pub version: i64,
}

impl StockRow {
    fn of(row: Option<Vec<i64>>, item: i64) -> Result<Self, DbError> {
        match row.as_deref() {
            Some([qty, version]) => Ok(Self { qty: *qty, version: *version }),
            _ => Err(DbError::new(ErrorKind::NotFound, format!("stock item {item} does not exist"))),
        }
    }
}

impl Session {
    /// A new item with `qty` in stock; its key.
    pub(crate) async fn create_stock_item(&mut self, qty: i64) -> Result<i64, DbError> {
        self.insert_id(&CREATE, &[Arg::Int(qty)]).await
    }

    pub(crate) async fn read_stock(&mut self, item: i64) -> Result<StockRow, DbError> {
        StockRow::of(self.fetch_ints(&READ, &[Arg::Int(item)], 2).await?, item)
    }

    /// The item's row, locked until the transaction ends (SQLite: read under `BEGIN IMMEDIATE`).
    pub(crate) async fn read_stock_for_update(&mut self, item: i64) -> Result<StockRow, DbError> {
        StockRow::of(self.fetch_ints(&READ_FOR_UPDATE, &[Arg::Int(item)], 2).await?, item)
    }

    /// Writes `qty` as it is (what a read-check-write computed).
    pub(crate) async fn write_stock(&mut self, item: i64, qty: i64) -> Result<(), DbError> {
        match self.exec(&WRITE, &[Arg::Int(qty), Arg::Int(item)]).await? {
            0 => Err(DbError::new(ErrorKind::NotFound, format!("stock item {item} does not exist"))),
            _ => Ok(()),
        }
    }

    /// Writes `qty` only if the row's version is still `version`; whether it did.
    pub(crate) async fn write_stock_if_version(&mut self, item: i64, qty: i64, version: i64) -> Result<bool, DbError> {
        Ok(self.exec(&WRITE_IF_VERSION, &[Arg::Int(qty), Arg::Int(item), Arg::Int(version)]).await? == 1)
    }

    /// Takes one unit in one statement if there is one (`WHERE qty >= 1`); whether it did.
    pub(crate) async fn take_one_if_in_stock(&mut self, item: i64) -> Result<bool, DbError> {
        Ok(self.exec(&TAKE_IF_IN_STOCK, &[Arg::Int(item)]).await? == 1)
    }

    /// Takes one unit with no guard of its own; `false` when the table's CHECK refused it (sold out).
    pub(crate) async fn take_one_checked_by_schema(&mut self, item: i64) -> Result<bool, DbError> {
        match self.exec_unless_check(&TAKE, &[Arg::Int(item)]).await? {
            None => Ok(false),
            Some(0) => Err(DbError::new(ErrorKind::NotFound, format!("stock item {item} does not exist"))),
            Some(_) => Ok(true),
        }
    }

    /// The item as it stands after every write committed before the read, on any node.
    pub(crate) async fn stock_settled(&mut self, item: i64) -> Result<StockRow, DbError> {
        let rows = self.fetch_all_settled(&STATE, &[Arg::Int(item)], 2).await?;
        StockRow::of(rows.into_iter().next(), item)
    }
}
