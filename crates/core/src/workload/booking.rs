//! `booking`: book a random (room, slot) of `--rooms` x `--slots` if it is free; a booked one refuses.
//! The invariant `no-double-booking`: no (room, slot) is booked twice, and every acknowledged booking
//! exists (each in-doubt one may exist, or not).
//!
//! The unsafe way is `naive`: check the slot is free, then insert. Two who check at once both find it
//! free and both insert: there is no row yet for a lock or a snapshot to conflict on (a phantom). The
//! fixes: the schema (`unique`: a unique key refuses the second insert, an answer, not an error), a
//! lock on something that exists (`pessimistic`: the room's row), or the isolation level
//! (`serializable`: predicate locks on PostgreSQL, gap locks on MariaDB).

use super::experiment::WorkloadExperiment;
use super::invariant::Invariant;
use super::ledger::Ledger;
use super::op::{Answer, OpCtx};
use super::rng::Rng;
use super::scenario::{Scenario, TxKind, WorkloadStrategy};
use super::sizes::Sizes;
use super::workloads::Workload;
use crate::db::{BookingCount, LockMode, Session};
use crate::error::DbError;

/// The `booking` workload.
#[derive(Debug, Clone, Copy)]
pub struct Booking;

/// How one booking is made safe, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookingStrategy {
    /// Count the slot's bookings, then insert, at the default isolation (SQLite: in autocommit).
    Naive,
    /// Insert under the unique key `(room, slot)`: its refusal is "already booked".
    Unique,
    /// Lock the room's row (`FOR UPDATE`; SQLite: `BEGIN IMMEDIATE`), check, insert.
    Pessimistic,
    /// The naive body in a SERIALIZABLE transaction, retried.
    Serializable,
}

impl WorkloadStrategy for BookingStrategy {
    const ALL: &'static [Self] =
        &[BookingStrategy::Naive, BookingStrategy::Unique, BookingStrategy::Pessimistic, BookingStrategy::Serializable];

    fn name(self) -> &'static str {
        match self {
            BookingStrategy::Naive => "naive",
            BookingStrategy::Unique => "unique",
            BookingStrategy::Pessimistic => "pessimistic",
            BookingStrategy::Serializable => "serializable",
        }
    }

    fn tx(self) -> TxKind {
        match self {
            BookingStrategy::Naive => TxKind::Plain,
            BookingStrategy::Unique => TxKind::Autocommit,
            BookingStrategy::Pessimistic => TxKind::RowLocking(LockMode::Wait),
            BookingStrategy::Serializable => TxKind::Serializable,
        }
    }

    fn retries(self) -> bool {
        self != BookingStrategy::Naive
    }

    fn safe(self) -> bool {
        self != BookingStrategy::Naive
    }

    // SERIALIZABLE's read locks are the node's own and two bookings of a slot insert two rows that
    // certification does not compare; the unique key and the room's row written by `pessimistic` are.
    fn safe_across_nodes(self) -> bool {
        matches!(self, BookingStrategy::Unique | BookingStrategy::Pessimistic)
    }
}

/// The run's rooms (their keys, in creation order) and slots per room.
#[derive(Debug, Clone)]
pub struct BookingFixture {
    pub rooms: Vec<i64>,
    pub slots: usize,
}

/// One booking: slot `slot` of room `room` (an index into the run's rooms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Book {
    pub room: usize,
    pub slot: usize,
}

impl Scenario for Booking {
    const WORKLOAD: Workload = Workload::Booking;
    const INVARIANT: &'static str = "no-double-booking";
    const SENTENCE: &'static str = "no (room, slot) is booked twice, and every acknowledged booking exists \
         (each in-doubt one may, or not)";

    type Strategy = BookingStrategy;
    type Fixture = BookingFixture;
    type Op = Book;
    type State = Vec<BookingCount>;

    fn validate(experiment: &WorkloadExperiment) -> Result<(), String> {
        let (rooms, slots) = (experiment.sizes.rooms, experiment.sizes.slots);
        if !(1..=Sizes::MAX_ROOMS).contains(&rooms) {
            return Err(format!("--rooms must be between 1 and {}, got {rooms}", Sizes::MAX_ROOMS));
        }
        if !(1..=Sizes::MAX_SLOTS).contains(&slots) {
            return Err(format!("--slots must be between 1 and {}, got {slots}", Sizes::MAX_SLOTS));
        }
        Ok(())
    }

    async fn setup(session: &mut Session, experiment: &WorkloadExperiment) -> Result<BookingFixture, DbError> {
        let rooms = session.create_rooms(experiment.sizes.rooms).await?;
        Ok(BookingFixture { rooms, slots: experiment.sizes.slots })
    }

    fn sizes(fixture: &BookingFixture) -> Vec<(&'static str, i64)> {
        vec![("rooms", fixture.rooms.len() as i64), ("slots", fixture.slots as i64)]
    }

    fn next_op(fixture: &BookingFixture, rng: &mut Rng) -> Book {
        let room = rng.below(fixture.rooms.len() as u64) as usize;
        let slot = rng.below(fixture.slots as u64) as usize;
        Book { room, slot }
    }

    fn forced_op(
        _strategy: BookingStrategy,
        _fixture: &BookingFixture,
        _worker: usize,
        _workers: usize,
    ) -> Option<Book> {
        // Everyone wants the first slot of the first room.
        Some(Book { room: 0, slot: 0 })
    }

    fn races(strategy: BookingStrategy, _fixture: &BookingFixture, _worker: usize, _workers: usize) -> bool {
        // The strategies that check without a lock; a locking read would keep the others from the gate.
        matches!(strategy, BookingStrategy::Naive | BookingStrategy::Serializable)
    }

    async fn attempt(
        strategy: BookingStrategy,
        session: &mut Session,
        fixture: &BookingFixture,
        op: Book,
        ctx: &OpCtx<'_>,
    ) -> Result<Answer, DbError> {
        let (room, slot) = (fixture.rooms[op.room], op.slot as i64);
        match strategy {
            BookingStrategy::Naive | BookingStrategy::Serializable => {
                let taken = session.bookings_of(room, slot).await? > 0;
                ctx.after_read().await;
                if taken {
                    return Ok(Answer::Refused);
                }
                session.book(room, slot).await?;
                Ok(Answer::Done)
            }
            BookingStrategy::Unique => {
                Ok(if session.book_unless_taken(room, slot).await? { Answer::Done } else { Answer::Refused })
            }
            BookingStrategy::Pessimistic => {
                session.lock_room(room).await?;
                if session.bookings_of(room, slot).await? > 0 {
                    return Ok(Answer::Refused);
                }
                session.book(room, slot).await?;
                session.touch_room(room).await?;
                Ok(Answer::Done)
            }
        }
    }

    async fn state(session: &mut Session, fixture: &BookingFixture) -> Result<Vec<BookingCount>, DbError> {
        let first = fixture.rooms.iter().copied().min().unwrap_or_default();
        let last = fixture.rooms.iter().copied().max().unwrap_or_default();
        let rows = session.bookings_settled(first, last).await?;
        Ok(rows.into_iter().filter(|row| fixture.rooms.contains(&row.room)).collect())
    }

    /// A booking contends for its (room, slot): one may be acknowledged.
    fn contends(fixture: &BookingFixture, _state: &Self::State, op: Book) -> Option<(i64, u64)> {
        Some(((op.room * fixture.slots + op.slot) as i64, 1))
    }

    fn check(fixture: &BookingFixture, state: &Vec<BookingCount>, ledger: &Ledger<Book>) -> Invariant {
        let count = |op: &Book| {
            let room = fixture.rooms[op.room];
            state.iter().find(|c| c.room == room && c.slot == op.slot as i64).map_or(0, |c| c.bookings)
        };
        let double = state.iter().map(|c| (c.bookings - 1).max(0) as u64).sum::<u64>();
        let mut cells: Vec<Book> = ledger.acknowledged.clone();
        cells.sort_by_key(|b| (b.room, b.slot));
        cells.dedup();
        let missing = cells.iter().filter(|b| count(b) == 0).count() as u64;
        check_bookings(double, missing, ledger.acknowledged.len(), state.iter().map(|c| c.bookings).sum())
    }
}

/// The no-double-booking verdict: `double` bookings beyond the first of a (room, slot), `missing`
/// acknowledged bookings not in the database, of `acknowledged` and `rows` in all.
fn check_bookings(double: u64, missing: u64, acknowledged: usize, rows: i64) -> Invariant {
    let violations = double + missing;
    let detail = if violations == 0 {
        format!("no double booking: {rows} bookings, each of a different slot ({acknowledged} acknowledged)")
    } else {
        let mut parts = Vec::new();
        if double > 0 {
            parts.push(format!("{double} double bookings ({rows} bookings, {acknowledged} acknowledged)"));
        }
        if missing > 0 {
            parts.push(format!("{missing} acknowledged bookings missing"));
        }
        parts.join("; ")
    };
    Invariant::checked(Booking::INVARIANT, violations, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_booking_of_a_slot_is_a_violation() {
        assert_eq!(check_bookings(0, 0, 3, 3).held, Some(true));
        let broken = check_bookings(3, 0, 4, 4);
        assert_eq!((broken.held, broken.violations), (Some(false), Some(3)));
        assert!(broken.detail.starts_with("3 double bookings"), "{}", broken.detail);
        assert_eq!(check_bookings(0, 1, 1, 0).violations, Some(1));
    }
}
