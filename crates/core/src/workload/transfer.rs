//! `transfer`: move a random amount (seeded per worker) between two of `--accounts` accounts; an
//! account that lacks the amount refuses it (insufficient funds). The invariant `money-conserved`: the
//! total is what it was, no balance is negative, and each balance is its start plus the acknowledged
//! credits minus the acknowledged debits (each in-doubt transfer may have moved its amount, or not).
//!
//! The unsafe way is `naive`: read both balances, check, write back both computed values. Two
//! transfers from one account that read the same balance both write it, and one debit vanishes: money
//! created. Locking both rows fixes it, but in the order the transfer names them
//! (`pessimistic-unordered`) two opposite transfers deadlock: the database aborts one (40P01, 1213) and
//! the retry runs it again. Locking in key order (`pessimistic`) never deadlocks.

use std::collections::{HashMap, HashSet};

use super::experiment::WorkloadExperiment;
use super::invariant::Invariant;
use super::ledger::Ledger;
use super::op::{Answer, OpCtx};
use super::rng::Rng;
use super::scenario::{Scenario, TxKind, WorkloadStrategy};
use super::sizes::Sizes;
use super::workloads::Workload;
use crate::db::{AccountRow, Backend, LockMode, Session};
use crate::error::{DbError, ErrorKind};

/// The `transfer` workload.
#[derive(Debug, Clone, Copy)]
pub struct Transfer;

/// Each account's balance at the start.
pub const INITIAL_BALANCE: i64 = 100;
/// The largest amount one transfer moves (from 1).
pub const MAX_AMOUNT: u64 = 30;
/// The amount of the transfers `force_race` makes race.
const FORCED_AMOUNT: i64 = 10;

/// How one transfer is made safe, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferStrategy {
    /// Read both balances, check, write both computed values, at the default isolation (SQLite: in
    /// autocommit). Creates and destroys money.
    Naive,
    /// `SELECT ... FOR UPDATE` of each account in the order the transfer names them: opposite
    /// transfers deadlock, and the retry runs the loser again.
    PessimisticUnordered,
    /// Both accounts locked in key order by one statement (`ORDER BY id FOR UPDATE`): no deadlock.
    Pessimistic,
    /// Two guarded statements in one transaction: debit `WHERE balance >= amount` (no row matched:
    /// insufficient funds), then credit.
    Conditional,
    /// Read both balances and versions; write each only `WHERE version = <read>`, in one
    /// transaction; a miss is retried.
    Optimistic,
    /// The naive body in a SERIALIZABLE transaction, retried.
    Serializable,
}

impl WorkloadStrategy for TransferStrategy {
    const ALL: &'static [Self] = &[
        TransferStrategy::Naive,
        TransferStrategy::PessimisticUnordered,
        TransferStrategy::Pessimistic,
        TransferStrategy::Conditional,
        TransferStrategy::Optimistic,
        TransferStrategy::Serializable,
    ];

    fn name(self) -> &'static str {
        match self {
            TransferStrategy::Naive => "naive",
            TransferStrategy::PessimisticUnordered => "pessimistic-unordered",
            TransferStrategy::Pessimistic => "pessimistic",
            TransferStrategy::Conditional => "conditional",
            TransferStrategy::Optimistic => "optimistic",
            TransferStrategy::Serializable => "serializable",
        }
    }

    fn tx(self) -> TxKind {
        match self {
            TransferStrategy::Naive => TxKind::Plain,
            TransferStrategy::PessimisticUnordered | TransferStrategy::Pessimistic => {
                TxKind::RowLocking(LockMode::Wait)
            }
            TransferStrategy::Conditional | TransferStrategy::Optimistic => TxKind::Transaction,
            TransferStrategy::Serializable => TxKind::Serializable,
        }
    }

    fn retries(self) -> bool {
        self != TransferStrategy::Naive
    }

    fn safe(self) -> bool {
        self != TransferStrategy::Naive
    }
}

/// The run's accounts (their keys, in creation order) and the backend they live on.
#[derive(Debug, Clone)]
pub struct TransferFixture {
    pub accounts: Vec<i64>,
    pub backend: Backend,
}

/// One transfer: `amount` from account `from` to account `to` (indexes into the run's accounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub from: usize,
    pub to: usize,
    pub amount: i64,
}

impl Scenario for Transfer {
    const WORKLOAD: Workload = Workload::Transfer;
    const INVARIANT: &'static str = "money-conserved";
    const SENTENCE: &'static str = "the total is conserved, no balance is negative, and each balance is its start \
         plus the acknowledged credits minus the acknowledged debits (each in-doubt transfer may have moved, or not)";

    type Strategy = TransferStrategy;
    type Fixture = TransferFixture;
    type Op = Move;
    type State = Vec<AccountRow>;

    fn validate(experiment: &WorkloadExperiment) -> Result<(), String> {
        let accounts = experiment.sizes.accounts;
        if !(2..=Sizes::MAX_ACCOUNTS).contains(&accounts) {
            return Err(format!("--accounts must be between 2 and {}, got {accounts}", Sizes::MAX_ACCOUNTS));
        }
        Ok(())
    }

    async fn setup(session: &mut Session, experiment: &WorkloadExperiment) -> Result<TransferFixture, DbError> {
        let accounts = session.create_accounts(INITIAL_BALANCE, experiment.sizes.accounts).await?;
        Ok(TransferFixture { accounts, backend: session.backend() })
    }

    fn sizes(fixture: &TransferFixture) -> Vec<(&'static str, i64)> {
        vec![("accounts", fixture.accounts.len() as i64), ("initial_balance", INITIAL_BALANCE)]
    }

    fn next_op(fixture: &TransferFixture, rng: &mut Rng) -> Move {
        let n = fixture.accounts.len() as u64;
        let from = rng.below(n);
        let to = (from + 1 + rng.below(n - 1)) % n;
        let amount = 1 + rng.below(MAX_AMOUNT) as i64;
        Move { from: from as usize, to: to as usize, amount }
    }

    fn forced_op(strategy: TransferStrategy, fixture: &TransferFixture, worker: usize, workers: usize) -> Option<Move> {
        let n = fixture.accounts.len();
        match strategy {
            // A ring closed over the first min(workers, accounts) accounts: worker w locks account w,
            // then wants w + 1, which the next worker holds, and the last wants the first's.
            TransferStrategy::PessimisticUnordered => {
                let ring = ring_size(workers, n);
                Some(Move { from: worker % ring, to: (worker + 1) % ring, amount: FORCED_AMOUNT })
            }
            // Everyone debits the first account, which they all read before any writes.
            TransferStrategy::Naive | TransferStrategy::Optimistic | TransferStrategy::Serializable => {
                Some(Move { from: 0, to: 1 + worker % (n - 1), amount: FORCED_AMOUNT })
            }
            TransferStrategy::Pessimistic | TransferStrategy::Conditional => None,
        }
    }

    fn races(strategy: TransferStrategy, fixture: &TransferFixture, worker: usize, workers: usize) -> bool {
        match strategy {
            TransferStrategy::Naive | TransferStrategy::Optimistic | TransferStrategy::Serializable => true,
            // Each holds its first lock at the gate: only the first lap of the ring, where no two
            // workers want the same first account, and not on SQLite, whose lock is the whole
            // database (the others would wait for it, not at the gate).
            TransferStrategy::PessimisticUnordered => {
                fixture.backend != Backend::Sqlite && worker < ring_size(workers, fixture.accounts.len())
            }
            TransferStrategy::Pessimistic | TransferStrategy::Conditional => false,
        }
    }

    async fn attempt(
        strategy: TransferStrategy,
        session: &mut Session,
        fixture: &TransferFixture,
        op: Move,
        ctx: &OpCtx<'_>,
    ) -> Result<Answer, DbError> {
        let (a, b) = (fixture.accounts[op.from], fixture.accounts[op.to]);
        match strategy {
            TransferStrategy::Naive | TransferStrategy::Serializable => {
                let from = session.read_account(a).await?;
                let to = session.read_account(b).await?;
                ctx.after_read().await;
                move_if_funds(session, from, to, op.amount).await
            }
            TransferStrategy::PessimisticUnordered => {
                let from = session.lock_account(a).await?;
                ctx.after_read().await;
                let to = session.lock_account(b).await?;
                move_if_funds(session, from, to, op.amount).await
            }
            TransferStrategy::Pessimistic => {
                let (from, to) = session.lock_accounts_in_key_order(a, b).await?;
                move_if_funds(session, from, to, op.amount).await
            }
            TransferStrategy::Conditional => {
                if !session.debit_if_funds(a, op.amount).await? {
                    return Ok(Answer::Refused);
                }
                session.credit(b, op.amount).await?;
                Ok(Answer::Done)
            }
            TransferStrategy::Optimistic => {
                let from = session.read_account(a).await?;
                let to = session.read_account(b).await?;
                ctx.after_read().await;
                if from.balance < op.amount {
                    return Ok(Answer::Refused);
                }
                for (account, balance) in [(from, from.balance - op.amount), (to, to.balance + op.amount)] {
                    if !session.write_balance_if_version(account.id, balance, account.version).await? {
                        return Err(DbError::new(
                            ErrorKind::StaleVersion,
                            format!("account {} changed since version {} was read", account.id, account.version),
                        ));
                    }
                }
                Ok(Answer::Done)
            }
        }
    }

    async fn state(session: &mut Session, fixture: &TransferFixture) -> Result<Vec<AccountRow>, DbError> {
        let first = fixture.accounts.iter().copied().min().unwrap_or_default();
        let last = fixture.accounts.iter().copied().max().unwrap_or_default();
        let ours: HashSet<i64> = fixture.accounts.iter().copied().collect();
        let rows = session.accounts_settled(first, last).await?;
        Ok(rows.into_iter().filter(|row| ours.contains(&row.id)).collect())
    }

    fn check(fixture: &TransferFixture, state: &Vec<AccountRow>, ledger: &Ledger<Move>) -> Invariant {
        let by_id: HashMap<i64, i64> = state.iter().map(|row| (row.id, row.balance)).collect();
        let balances: Vec<Option<i64>> = fixture.accounts.iter().map(|id| by_id.get(id).copied()).collect();
        check_money(&balances, ledger)
    }
}

/// The accounts the forced ring of `pessimistic-unordered` goes round: one per worker, at most every
/// account, at least two.
fn ring_size(workers: usize, accounts: usize) -> usize {
    workers.min(accounts).max(2)
}

/// Writes the two computed balances if `from` holds the amount: the read-check-write every locking
/// and the naive strategy share (safe or not by the locks and the level it runs under).
async fn move_if_funds(
    session: &mut Session,
    from: AccountRow,
    to: AccountRow,
    amount: i64,
) -> Result<Answer, DbError> {
    if from.balance < amount {
        return Ok(Answer::Refused);
    }
    session.write_balance(from.id, from.balance - amount).await?;
    session.write_balance(to.id, to.balance + amount).await?;
    Ok(Answer::Done)
}

/// The money-conserved check over the accounts' final balances (`None`: the row is gone).
/// Violations: money created or destroyed (absolute), negative balances, and balances the
/// acknowledged transfers (with the in-doubt ones either way) cannot explain, and missing accounts.
fn check_money(balances: &[Option<i64>], ledger: &Ledger<Move>) -> Invariant {
    let n = balances.len();
    let mut expected = vec![INITIAL_BALANCE; n];
    for op in &ledger.acknowledged {
        expected[op.from] -= op.amount;
        expected[op.to] += op.amount;
    }
    // What the in-doubt transfers may have moved, each way, per account.
    let (mut may_lose, mut may_gain) = (vec![0i64; n], vec![0i64; n]);
    for op in &ledger.in_doubt {
        may_lose[op.from] += op.amount;
        may_gain[op.to] += op.amount;
    }
    let missing = balances.iter().filter(|b| b.is_none()).count() as u64;
    let total: i64 = balances.iter().flatten().sum();
    let start = INITIAL_BALANCE * n as i64;
    let created = total - start;
    let negative = balances.iter().flatten().filter(|b| **b < 0).count() as u64;
    let unexplained = balances
        .iter()
        .zip(&expected)
        .enumerate()
        .filter(|(i, (balance, expected))| {
            balance.is_some_and(|b| b - **expected < -may_lose[*i] || b - **expected > may_gain[*i])
        })
        .count() as u64;
    let violations = created.unsigned_abs() + negative + unexplained + missing;
    let acknowledged = ledger.acknowledged.len();
    let detail = if violations == 0 {
        format!("money conserved: {total} across {n} accounts, each as the {acknowledged} acknowledged transfers say")
    } else {
        let mut parts = Vec::new();
        match created {
            0 => {}
            c if c > 0 => parts.push(format!("{c} created (the accounts hold {total}, they started with {start})")),
            c => parts.push(format!("{} destroyed (the accounts hold {total}, they started with {start})", -c)),
        }
        if unexplained > 0 {
            parts
                .push(format!("{unexplained} balances differ from what the {acknowledged} acknowledged transfers say"));
        }
        if negative > 0 {
            parts.push(format!("{negative} negative balances"));
        }
        if missing > 0 {
            parts.push(format!("{missing} accounts missing"));
        }
        format!("money not conserved: {}", parts.join("; "))
    };
    Invariant::checked(Transfer::INVARIANT, violations, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(acknowledged: Vec<Move>, in_doubt: Vec<Move>) -> Ledger<Move> {
        Ledger { acknowledged, in_doubt }
    }

    #[test]
    fn conserved_money_holds_and_a_lost_debit_is_money_created() {
        let ten = Move { from: 0, to: 1, amount: 10 };
        let held = check_money(&[Some(90), Some(110)], &ledger(vec![ten], vec![]));
        assert_eq!((held.held, held.violations), (Some(true), Some(0)), "{held:?}");
        // Two debits of 10 from account 0, one overwritten: 10 created, and account 0 is off.
        let other = Move { from: 0, to: 2, amount: 10 };
        let broken = check_money(&[Some(90), Some(110), Some(110)], &ledger(vec![ten, other], vec![]));
        assert_eq!(broken.violations, Some(11), "{broken:?}");
        assert!(broken.detail.contains("10 created"), "{}", broken.detail);
    }

    #[test]
    fn an_in_doubt_transfer_may_have_moved_or_not() {
        let ten = Move { from: 0, to: 1, amount: 10 };
        for balances in [[Some(90), Some(110)], [Some(100), Some(100)]] {
            let verdict = check_money(&balances, &ledger(vec![], vec![ten]));
            assert_eq!(verdict.violations, Some(0), "{balances:?}: {verdict:?}");
        }
        assert_eq!(check_money(&[Some(80), Some(120)], &ledger(vec![], vec![ten])).violations, Some(2));
    }

    #[test]
    fn ops_never_move_money_to_the_same_account() {
        let fixture = TransferFixture { accounts: vec![1, 2, 3], backend: Backend::Sqlite };
        let mut rng = Rng::for_worker(3, 0);
        for _ in 0..1000 {
            let op = Transfer::next_op(&fixture, &mut rng);
            assert!(op.from != op.to && op.from < 3 && op.to < 3, "{op:?}");
            assert!((1..=MAX_AMOUNT as i64).contains(&op.amount), "{op:?}");
        }
    }
}
