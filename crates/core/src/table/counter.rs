//! [`TableCounter`]: add an amount to a row of your table by one of the counter's strategies, each
//! a unit of work on a session of its own, as the experiment runs them on `posts.like`.

use super::{Key, TableError, UserTable, policy_for};
use crate::db::{Database, LockMode, TxMode};
use crate::error::{DbError, ErrorKind};
use crate::retry::{Retried, RetryPolicy};
use crate::strategy::Strategy;

/// The counter's strategy on a table of yours.
#[derive(Debug, Clone)]
pub struct TableCounter {
    table: UserTable,
    strategy: Strategy,
    retry: RetryPolicy,
}

impl TableCounter {
    pub(super) fn new(table: UserTable, strategy: Strategy) -> Result<Self, TableError> {
        let why = match strategy {
            Strategy::Naive | Strategy::Atomic | Strategy::Optimistic | Strategy::Serializable => None,
            Strategy::Pessimistic(LockMode::Wait) => None,
            Strategy::Pessimistic(_) => Some("a counter must not skip its increment: lock with `pessimistic` (wait)"),
            Strategy::Versioned | Strategy::VersionedNoRetry => {
                Some("it needs racelab's version column; `optimistic` compares the value itself")
            }
            Strategy::Advisory => Some("its lock is named after racelab's post key"),
            Strategy::Sharded { .. } => Some("it needs racelab's slot table"),
        };
        match why {
            Some(why) => Err(TableError::Unsupported { strategy, why }),
            None => Ok(Self { table, strategy, retry: RetryPolicy::default() }),
        }
    }

    /// The same strategy, retried under `policy` (where it retries).
    pub fn with_retry(self, policy: RetryPolicy) -> Self {
        Self { retry: policy, ..self }
    }

    /// Adds `by` to the row with `key`; the value it wrote, and the attempts it took. `naive` may
    /// lose another writer's update: it is here to show it, not to use.
    pub async fn add(&self, db: &Database, key: impl Into<Key>, by: i64) -> Retried<i64, DbError> {
        if let Err(err) = self.table.check_backend(db) {
            return Retried { result: Err(err), attempts: 1 };
        }
        let key = key.into();
        policy_for(self.strategy.retries(), self.retry).run(|_| self.attempt(db, &key, by)).await
    }

    async fn attempt(&self, db: &Database, key: &Key, by: i64) -> Result<i64, DbError> {
        let (t, key) = (&*self.table.sql, key.arg());
        let mut session = db.session().await?;
        match self.strategy {
            Strategy::Atomic if t.add_returns() => return session.user_add(t, key, by).await,
            Strategy::Optimistic => {
                let seen = session.user_read(t, key).await?;
                let value = checked_add(seen, by)?;
                if !session.user_write_if_value(t, key, value, seen).await? {
                    return Err(DbError::new(
                        ErrorKind::StaleVersion,
                        format!("{} changed since {seen} was read", t.name),
                    ));
                }
                return Ok(value);
            }
            _ => {}
        }
        // The rest are one transaction: its mode is the strategy's (the atomic add's, where it
        // cannot hand its value back by itself, is the default one, around the add and its read).
        let mode = self.strategy.tx_mode().unwrap_or(TxMode::DefaultIsolation);
        session.begin(mode).await?;
        let result = async {
            match self.strategy {
                Strategy::Atomic => session.user_add(t, key, by).await,
                Strategy::Pessimistic(_) => {
                    let value = checked_add(session.user_read_for_update(t, key).await?, by)?;
                    session.user_write(t, key, value).await.map(|()| value)
                }
                // Naive, and serializable (the naive body, at SERIALIZABLE).
                _ => {
                    let value = checked_add(session.user_read(t, key).await?, by)?;
                    session.user_write(t, key, value).await.map(|()| value)
                }
            }
        }
        .await;
        session.finish(result).await
    }
}

/// `value + by`, or an overflow error (as the database would raise it for a sum it computed).
fn checked_add(value: i64, by: i64) -> Result<i64, DbError> {
    value
        .checked_add(by)
        .ok_or_else(|| DbError::new(ErrorKind::CounterOverflow, format!("{value} + {by} is out of range")))
}
