//! [`TableStock`]: take an amount from a row of your table if it is there, by one of the stock
//! workload's strategies; "not enough" is an answer ([`Take::Refused`]), not an error.

use super::{Key, UserTable, policy_for};
use crate::Database;
use crate::db::{LockMode, TxMode};
use crate::error::{DbError, ErrorKind};
use crate::retry::{Retried, RetryPolicy};
use crate::workload::{StockStrategy, WorkloadStrategy};

/// How a take ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// The amount left the row.
    Taken,
    /// Less than the amount was there (for `check-constraint`: your table's CHECK refused it).
    Refused,
}

/// The stock's strategy on a table of yours.
#[derive(Debug, Clone)]
pub struct TableStock {
    table: UserTable,
    strategy: StockStrategy,
    retry: RetryPolicy,
}

impl TableStock {
    pub(super) fn new(table: UserTable, strategy: StockStrategy) -> Self {
        Self { table, strategy, retry: RetryPolicy::default() }
    }

    /// The same strategy, retried under `policy` (where it retries).
    pub fn with_retry(self, policy: RetryPolicy) -> Self {
        Self { retry: policy, ..self }
    }

    /// Takes `n` from the row with `key` if at least `n` is there. `naive` may sell what another
    /// taker already sold: it is here to show it, not to use. `check-constraint` relies on your
    /// table's `CHECK (value >= 0)`: without one it takes below zero.
    pub async fn take(&self, db: &Database, key: impl Into<Key>, n: i64) -> Retried<Take, DbError> {
        if let Err(err) = self.table.check_backend(db) {
            return Retried { result: Err(err), attempts: 1 };
        }
        if n < 1 {
            let err = DbError::new(ErrorKind::Other, format!("a take must be of 1 or more, got {n}"));
            return Retried { result: Err(err), attempts: 1 };
        }
        let key = key.into();
        policy_for(self.strategy.retries(), self.retry).run(|_| self.attempt(db, &key, n)).await
    }

    async fn attempt(&self, db: &Database, key: &Key, n: i64) -> Result<Take, DbError> {
        let (t, key) = (&*self.table.sql, key.arg());
        let mut session = db.session().await?;
        let mode = match self.strategy {
            StockStrategy::Conditional => {
                if session.user_take_if_at_least(t, key, n).await? {
                    return Ok(Take::Taken);
                }
                // No row matched: not enough, or no such row (which is an error, said by the read).
                session.user_read(t, key).await?;
                return Ok(Take::Refused);
            }
            StockStrategy::CheckConstraint => {
                return match session.user_take_checked_by_schema(t, key, n).await? {
                    Some(true) => Ok(Take::Taken),
                    Some(false) => session.user_read(t, key).await.map(|_| Take::Refused),
                    None => Ok(Take::Refused),
                };
            }
            StockStrategy::Optimistic => {
                let seen = session.user_read(t, key).await?;
                if seen < n {
                    return Ok(Take::Refused);
                }
                if !session.user_write_if_value(t, key, seen - n, seen).await? {
                    return Err(DbError::new(
                        ErrorKind::StaleVersion,
                        format!("{} changed since {seen} was read", t.name),
                    ));
                }
                return Ok(Take::Taken);
            }
            StockStrategy::Pessimistic => TxMode::RowLocking(LockMode::Wait),
            StockStrategy::Serializable => TxMode::Serializable,
            StockStrategy::Naive => TxMode::DefaultIsolation,
        };
        session.begin(mode).await?;
        let result = async {
            let seen = match mode {
                TxMode::RowLocking(_) => session.user_read_for_update(t, key).await?,
                _ => session.user_read(t, key).await?,
            };
            if seen < n {
                return Ok(Take::Refused);
            }
            session.user_write(t, key, seen - n).await.map(|()| Take::Taken)
        }
        .await;
        session.finish(result).await
    }
}
