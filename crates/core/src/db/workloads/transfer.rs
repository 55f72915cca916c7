//! The `transfer` workload's SQL: a run's accounts (`accounts`), between which amounts move. No CHECK
//! on the balance: whether a balance can go negative is what the strategies show.

use super::super::{Arg, Session, Statement};
use crate::error::{DbError, ErrorKind};

static CREATE: Statement = Statement::new("INSERT INTO accounts (balance, version) VALUES (?, 0){returning_id}");
static READ: Statement = Statement::new("SELECT id, balance, version FROM accounts WHERE id = ?");
static LOCK_ONE: Statement = Statement::new("SELECT id, balance, version FROM accounts WHERE id = ?{for_update}");
static LOCK_TWO_IN_KEY_ORDER: Statement =
    Statement::new("SELECT id, balance, version FROM accounts WHERE id IN (?, ?) ORDER BY id{for_update}");
static WRITE: Statement = Statement::new("UPDATE accounts SET balance = ?, version = version + 1 WHERE id = ?");
static WRITE_IF_VERSION: Statement =
    Statement::new("UPDATE accounts SET balance = ?, version = version + 1 WHERE id = ? AND version = ?");
static DEBIT_IF_FUNDS: Statement =
    Statement::new("UPDATE accounts SET balance = balance - ?, version = version + 1 WHERE id = ? AND balance >= ?");
static CREDIT: Statement =
    Statement::new("UPDATE accounts SET balance = balance + ?, version = version + 1 WHERE id = ?");
static STATE: Statement =
    Statement::new("SELECT id, balance, version FROM accounts WHERE id >= ? AND id <= ? ORDER BY id");

/// One account's balance and the count of writes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountRow {
    pub id: i64,
    pub balance: i64,
    pub version: i64,
}

impl AccountRow {
    fn of(row: &[i64]) -> Result<Self, DbError> {
        match row {
            [id, balance, version] => Ok(Self { id: *id, balance: *balance, version: *version }),
            _ => Err(DbError::new(ErrorKind::Other, "an account row without its three columns")),
        }
    }

    fn one(row: Option<Vec<i64>>, id: i64) -> Result<Self, DbError> {
        row.as_deref().map(Self::of).unwrap_or_else(|| Err(missing(id)))
    }
}

fn missing(id: i64) -> DbError {
    DbError::new(ErrorKind::NotFound, format!("account {id} does not exist"))
}

impl Session {
    /// `count` new accounts, each holding `balance`; their keys.
    pub(crate) async fn create_accounts(&mut self, balance: i64, count: usize) -> Result<Vec<i64>, DbError> {
        self.insert_ids(&CREATE, &[Arg::Int(balance)], count).await
    }

    pub(crate) async fn read_account(&mut self, id: i64) -> Result<AccountRow, DbError> {
        AccountRow::one(self.fetch_ints(&READ, &[Arg::Int(id)], 3).await?, id)
    }

    /// One account, locked until the transaction ends (SQLite: read under `BEGIN IMMEDIATE`).
    pub(crate) async fn lock_account(&mut self, id: i64) -> Result<AccountRow, DbError> {
        AccountRow::one(self.fetch_ints(&LOCK_ONE, &[Arg::Int(id)], 3).await?, id)
    }

    /// Two accounts, locked in key order by one statement (so two transfers never wait for each
    /// other crosswise); returned in the order asked for.
    pub(crate) async fn lock_accounts_in_key_order(
        &mut self,
        a: i64,
        b: i64,
    ) -> Result<(AccountRow, AccountRow), DbError> {
        let rows = self.fetch_all_ints(&LOCK_TWO_IN_KEY_ORDER, &[Arg::Int(a), Arg::Int(b)], 3).await?;
        let rows: Vec<AccountRow> = rows.iter().map(|r| AccountRow::of(r)).collect::<Result<_, _>>()?;
        let find = |id: i64| rows.iter().copied().find(|r| r.id == id).ok_or_else(|| missing(id));
        Ok((find(a)?, find(b)?))
    }

    /// Writes `balance` as it is (what a read-check-write computed).
    pub(crate) async fn write_balance(&mut self, id: i64, balance: i64) -> Result<(), DbError> {
        match self.exec(&WRITE, &[Arg::Int(balance), Arg::Int(id)]).await? {
            0 => Err(missing(id)),
            _ => Ok(()),
        }
    }

    /// Writes `balance` only if the account's version is still `version`; whether it did.
    pub(crate) async fn write_balance_if_version(
        &mut self,
        id: i64,
        balance: i64,
        version: i64,
    ) -> Result<bool, DbError> {
        Ok(self.exec(&WRITE_IF_VERSION, &[Arg::Int(balance), Arg::Int(id), Arg::Int(version)]).await? == 1)
    }

    /// Takes `amount` from the account in one statement if it holds that much; whether it did.
    pub(crate) async fn debit_if_funds(&mut self, id: i64, amount: i64) -> Result<bool, DbError> {
        Ok(self.exec(&DEBIT_IF_FUNDS, &[Arg::Int(amount), Arg::Int(id), Arg::Int(amount)]).await? == 1)
    }

    /// Adds `amount` to the account in one statement.
    pub(crate) async fn credit(&mut self, id: i64, amount: i64) -> Result<(), DbError> {
        match self.exec(&CREDIT, &[Arg::Int(amount), Arg::Int(id)]).await? {
            0 => Err(missing(id)),
            _ => Ok(()),
        }
    }

    /// Every account with a key from `first` to `last`, as they stand after every write committed
    /// before the read, on any node.
    pub(crate) async fn accounts_settled(&mut self, first: i64, last: i64) -> Result<Vec<AccountRow>, DbError> {
        let rows = self.fetch_all_settled(&STATE, &[Arg::Int(first), Arg::Int(last)], 3).await?;
        rows.iter().map(|r| AccountRow::of(r)).collect()
    }
}
