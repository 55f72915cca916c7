//! The workloads' SQL (see [`crate::workload`]): each workload's statements, written once as
//! [`Statement`](super::Statement)s, and the typed [`Session`](super::Session) calls its strategies
//! make, one workload a file. A strategy never sees SQL; a dialect difference is a token of the
//! statement (`{for_update}`, `{returning_id}`) or lives in the backend modules.
//!
//! To add a workload's SQL: a file here with its `static` statements and an `impl Session` block of
//! `pub(crate)` calls built on `Session::exec`, `exec_unless_check`, `fetch_ints`, `fetch_all_ints`,
//! `fetch_all_settled` and `insert_id`; its tables in a new migration per backend.

mod booking;
mod oncall;
mod queue;
mod stock;
mod transfer;

pub use self::booking::BookingCount;
pub use self::oncall::DoctorRow;
pub use self::queue::JobRow;
pub(crate) use self::queue::{CLAIMED, DONE, PENDING};
pub use self::stock::StockRow;
pub use self::transfer::AccountRow;
