//! The `booking` workload's SQL: a run's rooms (`booking_rooms`) and their bookings (`bookings`, one row
//! per booking of a (room, slot)). The unique key `(room, slot, unique_guard)` is the `unique`
//! strategy's guard: its rows carry `unique_guard = 1`, every other strategy's NULL.

use std::error::Error as _;

use super::super::{Arg, Session, Statement};
use crate::error::{DbError, ErrorKind};

static CREATE_ROOM: Statement = Statement::new("INSERT INTO booking_rooms (version) VALUES (0){returning_id}");
static COUNT: Statement = Statement::new("SELECT COUNT(*) FROM bookings WHERE room = ? AND slot = ?");
static LOCK_ROOM: Statement = Statement::new("SELECT id FROM booking_rooms WHERE id = ?{for_update}");
static TOUCH_ROOM: Statement = Statement::new("UPDATE booking_rooms SET version = version + 1 WHERE id = ?");
static BOOK: Statement = Statement::new("INSERT INTO bookings (room, slot, unique_guard) VALUES (?, ?, NULL)");
static BOOK_UNIQUE: Statement = Statement::new("INSERT INTO bookings (room, slot, unique_guard) VALUES (?, ?, 1)");
static STATE: Statement = Statement::new(
    "SELECT room, slot, COUNT(*) FROM bookings WHERE room >= ? AND room <= ? GROUP BY room, slot ORDER BY room, slot",
);

/// How many bookings one (room, slot) has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingCount {
    pub room: i64,
    pub slot: i64,
    pub bookings: i64,
}

/// Whether the driver's error under `err` is a unique key refusing the row.
fn is_unique_violation(err: &DbError) -> bool {
    err.source()
        .and_then(|source| source.downcast_ref::<sqlx::Error>())
        .and_then(|source| source.as_database_error())
        .is_some_and(|db| db.is_unique_violation())
}

impl Session {
    /// `count` new rooms; their keys.
    pub(crate) async fn create_rooms(&mut self, count: usize) -> Result<Vec<i64>, DbError> {
        self.insert_ids(&CREATE_ROOM, &[], count).await
    }

    /// How many bookings the (room, slot) has, as this transaction sees them.
    pub(crate) async fn bookings_of(&mut self, room: i64, slot: i64) -> Result<i64, DbError> {
        let row = self.fetch_ints(&COUNT, &[Arg::Int(room), Arg::Int(slot)], 1).await?;
        Ok(row.and_then(|r| r.first().copied()).unwrap_or(0))
    }

    /// The room's row, locked until the transaction ends (SQLite: under `BEGIN IMMEDIATE`).
    pub(crate) async fn lock_room(&mut self, room: i64) -> Result<(), DbError> {
        match self.fetch_ints(&LOCK_ROOM, &[Arg::Int(room)], 1).await? {
            Some(_) => Ok(()),
            None => Err(DbError::new(ErrorKind::NotFound, format!("room {room} does not exist"))),
        }
    }

    /// Writes the locked room's row, so that a transaction whose snapshot missed this booking conflicts
    /// with it (PostgreSQL's repeatable read) instead of booking the slot again.
    pub(crate) async fn touch_room(&mut self, room: i64) -> Result<(), DbError> {
        self.exec(&TOUCH_ROOM, &[Arg::Int(room)]).await.map(drop)
    }

    /// Books the (room, slot) as a check made before decided.
    pub(crate) async fn book(&mut self, room: i64, slot: i64) -> Result<(), DbError> {
        self.exec(&BOOK, &[Arg::Int(room), Arg::Int(slot)]).await.map(drop)
    }

    /// Books the (room, slot) under the unique key; `false` when the key refused it (already booked).
    pub(crate) async fn book_unless_taken(&mut self, room: i64, slot: i64) -> Result<bool, DbError> {
        match self.exec(&BOOK_UNIQUE, &[Arg::Int(room), Arg::Int(slot)]).await {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// The bookings per (room, slot) of every room with a key from `first` to `last`, as they stand
    /// after every write committed before the read, on any node.
    pub(crate) async fn bookings_settled(&mut self, first: i64, last: i64) -> Result<Vec<BookingCount>, DbError> {
        let rows = self.fetch_all_settled(&STATE, &[Arg::Int(first), Arg::Int(last)], 3).await?;
        rows.iter()
            .map(|row| match row.as_slice() {
                [room, slot, bookings] => Ok(BookingCount { room: *room, slot: *slot, bookings: *bookings }),
                _ => Err(DbError::new(ErrorKind::Other, "a booking count without its three columns")),
            })
            .collect()
    }
}
