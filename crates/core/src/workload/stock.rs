//! `stock`: buyers take one unit each of an item whose stock (`--stock`, by default half the demand)
//! runs out. The invariant `no-oversell`: the stock never goes below zero, and every unit sold left the
//! stock (`initial - final == acknowledged`, with each in-doubt sale allowed to have taken one).
//!
//! The unsafe way is `naive`: read the stock, check it, write back one less. Two buyers who read the
//! same stock both sell, and the second write overwrites the first: units sold that the stock never
//! lost (read-check-write oversells at PostgreSQL read committed and MariaDB repeatable read). The
//! fixes: one guarded statement (`conditional`), a lock (`pessimistic`), a version check
//! (`optimistic`), the isolation level (`serializable`), or the schema (`check-constraint`).

use super::experiment::WorkloadExperiment;
use super::invariant::Invariant;
use super::ledger::Ledger;
use super::op::{Answer, OpCtx};
use super::rng::Rng;
use super::scenario::{Scenario, TxKind, WorkloadStrategy};
use super::workloads::Workload;
use crate::db::{LockMode, Session, StockRow};
use crate::error::{DbError, ErrorKind};

/// The `stock` workload.
#[derive(Debug, Clone, Copy)]
pub struct Stock;

/// How one purchase is made safe, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StockStrategy {
    /// Read the stock, check it, write back one less, at the default isolation. Oversells.
    Naive,
    /// `UPDATE ... SET qty = qty - 1 WHERE id = ? AND qty >= 1`: no row matched is "sold out".
    Conditional,
    /// `SELECT ... FOR UPDATE`, check, write (SQLite: `BEGIN IMMEDIATE`).
    Pessimistic,
    /// Read `qty` and `version`; write only `WHERE version = <read>`; a miss is retried.
    Optimistic,
    /// The naive body in a SERIALIZABLE transaction, retried.
    Serializable,
    /// `UPDATE ... SET qty = qty - 1` with no guard of its own: the table's `CHECK (qty >= 0)` refuses
    /// the oversell, and the refusal is "sold out".
    CheckConstraint,
}

impl WorkloadStrategy for StockStrategy {
    const ALL: &'static [Self] = &[
        StockStrategy::Naive,
        StockStrategy::Conditional,
        StockStrategy::Pessimistic,
        StockStrategy::Optimistic,
        StockStrategy::Serializable,
        StockStrategy::CheckConstraint,
    ];

    fn name(self) -> &'static str {
        match self {
            StockStrategy::Naive => "naive",
            StockStrategy::Conditional => "conditional",
            StockStrategy::Pessimistic => "pessimistic",
            StockStrategy::Optimistic => "optimistic",
            StockStrategy::Serializable => "serializable",
            StockStrategy::CheckConstraint => "check-constraint",
        }
    }

    fn tx(self) -> TxKind {
        match self {
            StockStrategy::Naive => TxKind::Plain,
            StockStrategy::Pessimistic => TxKind::RowLocking(LockMode::Wait),
            StockStrategy::Serializable => TxKind::Serializable,
            StockStrategy::Conditional | StockStrategy::Optimistic | StockStrategy::CheckConstraint => {
                TxKind::Autocommit
            }
        }
    }

    fn retries(self) -> bool {
        self != StockStrategy::Naive
    }

    fn safe(self) -> bool {
        self != StockStrategy::Naive
    }
}

/// The run's item and its stock at the start.
#[derive(Debug, Clone, Copy)]
pub struct StockFixture {
    pub item: i64,
    pub initial: i64,
}

impl Scenario for Stock {
    const WORKLOAD: Workload = Workload::Stock;
    const INVARIANT: &'static str = "no-oversell";
    const SENTENCE: &'static str = "the stock never goes below zero and every unit sold left the stock \
         (initial - final == acknowledged; each in-doubt sale may have taken one)";

    type Strategy = StockStrategy;
    type Fixture = StockFixture;
    /// Every purchase is the same: one unit of the run's item.
    type Op = ();
    type State = StockRow;

    fn validate(experiment: &WorkloadExperiment) -> Result<(), String> {
        match experiment.sizes.stock {
            Some(stock) if stock < 0 => Err(format!("--stock must be 0 or more, got {stock}")),
            _ => Ok(()),
        }
    }

    async fn setup(session: &mut Session, experiment: &WorkloadExperiment) -> Result<StockFixture, DbError> {
        let demand = (experiment.workers as u64).saturating_mul(experiment.operations);
        let initial = experiment.sizes.stock.unwrap_or(i64::try_from(demand / 2).unwrap_or(i64::MAX));
        let item = session.create_stock_item(initial).await?;
        Ok(StockFixture { item, initial })
    }

    fn sizes(fixture: &StockFixture) -> Vec<(&'static str, i64)> {
        vec![("stock", fixture.initial)]
    }

    fn next_op(_fixture: &StockFixture, _rng: &mut Rng) {}

    fn races(strategy: StockStrategy, _fixture: &StockFixture, _worker: usize, _workers: usize) -> bool {
        // The strategies that read without a lock; a locking read would keep the others from the gate.
        matches!(strategy, StockStrategy::Naive | StockStrategy::Optimistic | StockStrategy::Serializable)
    }

    async fn attempt(
        strategy: StockStrategy,
        session: &mut Session,
        fixture: &StockFixture,
        _op: (),
        ctx: &OpCtx<'_>,
    ) -> Result<Answer, DbError> {
        let item = fixture.item;
        match strategy {
            StockStrategy::Naive | StockStrategy::Serializable => {
                let row = session.read_stock(item).await?;
                ctx.after_read().await;
                if row.qty < 1 {
                    return Ok(Answer::Refused);
                }
                // At the default isolation another buyer may have taken a unit since the read: this
                // write puts it back.
                session.write_stock(item, row.qty - 1).await?;
                Ok(Answer::Done)
            }
            StockStrategy::Conditional => Ok(done_or_refused(session.take_one_if_in_stock(item).await?)),
            StockStrategy::Pessimistic => {
                let row = session.read_stock_for_update(item).await?;
                if row.qty < 1 {
                    return Ok(Answer::Refused);
                }
                session.write_stock(item, row.qty - 1).await?;
                Ok(Answer::Done)
            }
            StockStrategy::Optimistic => {
                let row = session.read_stock(item).await?;
                ctx.after_read().await;
                if row.qty < 1 {
                    return Ok(Answer::Refused);
                }
                if !session.write_stock_if_version(item, row.qty - 1, row.version).await? {
                    return Err(DbError::new(
                        ErrorKind::StaleVersion,
                        format!("stock item {item} changed since version {} was read", row.version),
                    ));
                }
                Ok(Answer::Done)
            }
            StockStrategy::CheckConstraint => Ok(done_or_refused(session.take_one_checked_by_schema(item).await?)),
        }
    }

    async fn state(session: &mut Session, fixture: &StockFixture) -> Result<StockRow, DbError> {
        session.stock_settled(fixture.item).await
    }

    /// Every purchase contends for the one item: as many may be acknowledged as it had in stock.
    fn contends(fixture: &StockFixture, _state: &Self::State, _op: ()) -> Option<(i64, u64)> {
        Some((fixture.item, u64::try_from(fixture.initial).unwrap_or(0)))
    }

    fn check(fixture: &StockFixture, state: &StockRow, ledger: &Ledger<()>) -> Invariant {
        check_stock(fixture.initial, state.qty, ledger.acknowledged.len() as i64, ledger.in_doubt.len() as i64)
    }
}

/// `Done` if the statement took the unit, `Refused` (sold out) if it did not.
fn done_or_refused(taken: bool) -> Answer {
    if taken { Answer::Done } else { Answer::Refused }
}

/// The no-oversell check: `initial` in stock, `last` left, `sold` sales acknowledged, `in_doubt`
/// sales whose commit's answer was lost. Violations: units sold that never left the stock, units that
/// left the stock with no sale (beyond the in-doubt ones), and units below zero.
fn check_stock(initial: i64, last: i64, sold: i64, in_doubt: i64) -> Invariant {
    let taken = initial.saturating_sub(last);
    let oversold = sold.saturating_sub(taken).max(0);
    let unexplained = taken.saturating_sub(sold.saturating_add(in_doubt)).max(0);
    let below_zero = last.saturating_neg().max(0);
    let violations = oversold.saturating_add(unexplained).saturating_add(below_zero).unsigned_abs();
    let doubt = if in_doubt > 0 { format!(" ({in_doubt} in doubt)") } else { String::new() };
    let detail = if violations == 0 {
        format!("no oversell: {sold} sold{doubt} of a stock of {initial}, {last} left")
    } else {
        let mut parts = Vec::new();
        if oversold > 0 {
            parts.push(format!(
                "oversold {oversold} units: {sold} sales acknowledged, but the stock went from {initial} to {last} \
                 ({taken} taken)"
            ));
        }
        if unexplained > 0 {
            parts.push(format!("{unexplained} units left the stock with no sale{doubt}"));
        }
        if below_zero > 0 {
            parts.push(format!("the stock is {last}, below zero"));
        }
        parts.join("; ")
    };
    Invariant::checked(Stock::INVARIANT, violations, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_counts_oversold_units_and_is_bounded_by_doubt() {
        let held = check_stock(8, 0, 8, 0);
        assert_eq!((held.held, held.violations), (Some(true), Some(0)), "{held:?}");
        // Sixteen sales, one unit taken: fifteen oversold.
        let broken = check_stock(8, 7, 16, 0);
        assert_eq!((broken.held, broken.violations), (Some(false), Some(15)), "{broken:?}");
        assert!(broken.detail.starts_with("oversold 15 units"), "{}", broken.detail);
        // Two in doubt may have taken their units, or not.
        assert_eq!(check_stock(8, 2, 4, 2).violations, Some(0));
        assert_eq!(check_stock(8, 4, 4, 2).violations, Some(0));
        assert_eq!(check_stock(8, 1, 4, 2).violations, Some(1));
        assert_eq!(check_stock(8, -1, 9, 0).violations, Some(1));
    }
}
