//! Connections a session handed back clean, kept for the next session instead of going back through
//! sqlx's pool.
//!
//! sqlx pings every connection as it goes back to its pool (`PoolConnection`'s drop: one round trip,
//! which sqlx 0.9 offers no way to skip). On a hot post liked by one client that ping is a second
//! round trip, and a second wake-up of the server, for every like. A session that ended cleanly (every
//! statement answered, none failed, no transaction, lock or setting left behind) knows its connection
//! works: the server has just answered it. So its connection is kept here, still checked out of the
//! pool (it counts against `max_connections` as before), and the next session takes the most recently
//! kept one. A kept connection follows the pool's liveness rule ([`PING_AFTER_IDLE`]): one that sat
//! here longer is pinged before it is handed out, and closed (the session then comes from the pool)
//! if the ping fails. A sweep hands back to the pool every connection kept for longer than
//! [`RETURN_AFTER_IDLE`], so a quiet service holds its connections where sqlx's own upkeep sees them.
//!
//! Only while no session waits for sqlx's pool: then a connection handed back goes to the pool, which
//! serves its waiters in turn, as before. So a busy service (more requests than connections) keeps
//! sqlx's fair queue, and a service with a connection to spare skips the ping.
//!
//! A session that may have left its connection in an unknown state (a failed statement, a statement
//! cut off by a cancelled future) never comes here: sqlx's ping on the way back decides about it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::pool::PING_AFTER_IDLE;
use super::session::PooledConn;

/// How long a kept connection may sit unused before the sweep gives it back to the pool.
pub const RETURN_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The connections kept, the most recently kept last.
pub(super) struct Warm {
    shelf: Mutex<Shelf>,
    capacity: usize,
    /// Sessions waiting for sqlx's pool to hand them a connection: while any does, a connection
    /// handed back goes to the pool, which serves its waiters in turn (a kept one would wait for them
    /// to look again, while newcomers took it first).
    waiting: AtomicUsize,
}

/// A session waiting for the pool, counted while it lives.
pub(super) struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The kept connections, oldest first, and whether the pool is closing: then nothing more is kept, as
/// the pool's close waits for every connection handed out.
#[derive(Default)]
struct Shelf {
    kept: Vec<Kept>,
    closed: bool,
}

struct Kept {
    conn: PooledConn,
    since: Instant,
}

/// A kept connection, and whether it must be pinged before use (it sat longer than [`PING_AFTER_IDLE`]).
pub(super) struct Taken {
    pub conn: PooledConn,
    pub needs_ping: bool,
}

impl Warm {
    /// Keeps at most `capacity` connections; sweeps them back to the pool from a task of the current
    /// runtime, which ends when the last handle to them is dropped.
    pub(super) fn new(capacity: usize) -> Arc<Self> {
        let warm = Arc::new(Self { shelf: Mutex::default(), capacity, waiting: AtomicUsize::new(0) });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep(Arc::downgrade(&warm)));
        }
        warm
    }

    /// Keeps `conn`, or gives it back when a session waits for the pool, when as many are kept as
    /// allowed, or when the pool is closing.
    pub(super) fn keep(&self, conn: PooledConn) -> Result<(), PooledConn> {
        let mut shelf = self.lock();
        // Read under the lock: a session that starts waiting after this looks at the shelf again.
        if self.waiting.load(Ordering::SeqCst) > 0 || shelf.closed || shelf.kept.len() >= self.capacity {
            return Err(conn);
        }
        shelf.kept.push(Kept { conn, since: Instant::now() });
        Ok(())
    }

    /// The most recently kept connection.
    pub(super) fn take(&self) -> Option<Taken> {
        let Kept { conn, since } = self.lock().kept.pop()?;
        Some(Taken { conn, needs_ping: since.elapsed() > PING_AFTER_IDLE })
    }

    /// Counts a session as waiting for the pool until the guard is dropped. It must look at the shelf
    /// once more after this ([`Warm::take`]): a connection kept just before is not given to the pool.
    pub(super) fn wait(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(&self.waiting)
    }

    /// How many connections are kept now.
    pub(super) fn len(&self) -> usize {
        self.lock().kept.len()
    }

    /// Gives back to the pool the connections kept for longer than `idle`; returns how many.
    pub(super) fn give_back(&self, idle: Duration) -> usize {
        let stale: Vec<Kept> = {
            let mut shelf = self.lock();
            let fresh_from = shelf.kept.iter().position(|k| k.since.elapsed() <= idle).unwrap_or(shelf.kept.len());
            shelf.kept.drain(..fresh_from).collect()
        };
        // Dropped outside the lock: each goes back through sqlx's own return (its ping included).
        stale.len()
    }

    /// Gives every kept connection back to the pool, and keeps none from now on.
    pub(super) fn close(&self) {
        let all = {
            let mut shelf = self.lock();
            shelf.closed = true;
            std::mem::take(&mut shelf.kept)
        };
        drop(all);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shelf> {
        self.shelf.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        // sqlx returns a connection to its pool from a task: without a runtime there is none to run it,
        // and the pool is going away with this handle, so such connections are just closed.
        if tokio::runtime::Handle::try_current().is_err() {
            for kept in self.shelf.get_mut().unwrap_or_else(PoisonError::into_inner).kept.drain(..) {
                kept.conn.close_without_pool();
            }
        }
    }
}

/// Every [`RETURN_AFTER_IDLE`], gives back what sat that long, until the connections' owner is gone.
async fn sweep(warm: Weak<Warm>) {
    loop {
        tokio::time::sleep(RETURN_AFTER_IDLE).await;
        let Some(warm) = warm.upgrade() else { return };
        warm.give_back(RETURN_AFTER_IDLE);
    }
}
