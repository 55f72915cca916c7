//! [`Sizes`]: how big a workload's rows are, each size named after its flag (`--stock`, `--accounts`, `--doctors`),
//! with the default a demanding user expects. Checked by each workload's `Scenario::validate`.

/// The sizes of the workloads' rows (serialized by their flags' names, as a run's settings show them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Sizes {
    /// `stock`: units in stock at the start; `None`: workers x operations / 2 (half the demand).
    pub stock: Option<i64>,
    /// `transfer`: accounts the transfers move money between (2 or more).
    pub accounts: usize,
    /// `oncall`: doctors on call per shift at the start (one shift per pair of workers).
    pub doctors: usize,
    /// `queue`: jobs in the queue at the start; `None`: workers x operations / 2 (half the demand).
    pub jobs: Option<usize>,
    /// `booking`: rooms to book.
    pub rooms: usize,
    /// `booking`: time slots per room.
    pub slots: usize,
}

impl Sizes {
    /// The default number of accounts.
    pub const DEFAULT_ACCOUNTS: usize = 8;
    /// The most accounts a run may have.
    pub const MAX_ACCOUNTS: usize = 10_000;
    /// The default number of doctors per shift.
    pub const DEFAULT_DOCTORS: usize = 4;
    /// The most doctors a shift may have.
    pub const MAX_DOCTORS: usize = 1_000;
    /// The most jobs a queue may have.
    pub const MAX_JOBS: usize = 100_000;
    /// The default number of rooms.
    pub const DEFAULT_ROOMS: usize = 4;
    /// The most rooms a run may have.
    pub const MAX_ROOMS: usize = 10_000;
    /// The default number of slots per room (the lab's `--slots` default, which it shares with the
    /// `sharded` strategy).
    pub const DEFAULT_SLOTS: usize = 64;
    /// The most slots per room.
    pub const MAX_SLOTS: usize = 1_024;
}

impl Default for Sizes {
    fn default() -> Self {
        Self {
            stock: None,
            accounts: Self::DEFAULT_ACCOUNTS,
            doctors: Self::DEFAULT_DOCTORS,
            jobs: None,
            rooms: Self::DEFAULT_ROOMS,
            slots: Self::DEFAULT_SLOTS,
        }
    }
}
