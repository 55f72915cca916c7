//! The counter split over slot rows: each increment adds 1 to one slot chosen at random, in one atomic
//! upsert (autocommit, one round trip), and the counter is read as the post's own `like` plus the sum of
//! its slots ([`Session::read_total`]).
//!
//! Why: every single-row strategy queues on the row's lock, and the lock is held until the commit has
//! been flushed, so one hot row cannot go faster than one flush after another. Increments on different
//! slots lock different rows and their commits share flushes. The price is on the read side (a sum
//! over at most `slots` rows) and in the schema (a table of its own, `post_slots`).
//!
//! The slot is random, not the worker's own, because real writers (other processes, other nodes of a
//! cluster) do not know each other's numbers; a collision only means a short wait on that slot's lock.
//! An increment never reads the total: whoever needs the count (a reader, the liker) sums it.

use super::Step;
use crate::db::Session;
use crate::error::DbError;

/// Slots when nobody chooses: see the README's "Scaling out" section for the measurements behind it.
pub const DEFAULT_SLOTS: u16 = 64;
/// The most slots a counter may have: beyond a few hundred the read's sum costs more than any
/// contention it could still remove.
pub const MAX_SLOTS: u16 = 1024;

/// Adds `by` to a random slot; returns the slot's new value (the post's count is the sum of them all,
/// which this does not read: an increment of the experiment costs one round trip).
pub(super) async fn unit(session: &mut Session, step: Step<'_>, slots: u16, by: i64) -> Result<i64, DbError> {
    let slot = rand::random_range(0..slots.max(1));
    let like = session.increment_slot_by(step.pk, slot, by).await?;
    tracing::debug!(post = step.pk, worker = step.worker, attempt = step.attempt, slot, like, "wrote slot");
    Ok(like)
}
