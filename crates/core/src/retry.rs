//! The one retry policy used by every strategy that retries, and public API for any read-modify-write.
//!
//! A conflict (serialization failure, deadlock, stale version, lock timeout, ...) means "run the whole
//! unit of work again", never "run the failed statement again": the transaction that saw the conflict
//! is gone. So the retry wraps a closure that does the whole unit of work, and decides on
//! [`ErrorKind`], never on message text.
//!
//! Sleeps use exponential backoff with *full* jitter (`random(0, min(cap, base * 2^n))`, as in the AWS
//! architecture blog's analysis of OCC on one row): contenders spread out instead of colliding again in
//! lock step. backon's own jitter adds to the delay instead, so the backoff here is our own type that
//! implements backon's [`Backoff`](backon::Backoff) (an iterator of sleeps); it also works with backon's
//! `Retryable` combinators.
//!
//! The loop itself is ours for one reason: a unit of work that borrows a connection mutably cannot be
//! written as backon's `FnMut() -> Future`; [`Retrier`] drives such a loop with the same policy.
//!
//! ```
//! use racelab_core::db::TxMode;
//! use racelab_core::{ConnectOptions, Database, DatabaseUrl, DbError, RetryPolicy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let path = std::env::temp_dir().join(format!("racelab-doc-{}.db", std::process::id()));
//! let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display()))?;
//! let db = Database::connect(ConnectOptions::new(url)).await?;
//! let pk = db.create_post().await?;
//!
//! // Your own read-modify-write (here: double the counter, plus one), as one unit of work. Any
//! // conflict (serialization failure, deadlock, busy, ...) re-runs the whole closure.
//! let policy = RetryPolicy::default();
//! let retried = policy
//!     .run(|attempt| {
//!         let db = db.clone();
//!         async move {
//!             let mut session = db.session().await?;
//!             session.begin(TxMode::Serializable).await?;
//!             let result = async {
//!                 let current = session.read(pk).await?;
//!                 session.write(pk, current.like * 2 + 1).await?;
//!                 Ok::<_, DbError>(current.like * 2 + 1)
//!             }
//!             .await;
//!             let _ = attempt; // 1 on the first try, 2 on the first retry, ...
//!             session.finish(result).await
//!         }
//!     })
//!     .await;
//! assert_eq!(retried.result?, 1);
//! assert_eq!(retried.attempts, 1);
//! assert_eq!(db.load_post(pk).await?.like, 1);
//! # db.close().await;
//! # for suffix in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{suffix}", path.display())); }
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Classify, ErrorKind};

/// How often, how patiently and how long to retry a unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The upper bound of the first sleep; it doubles with each retry...
    pub base_delay: Duration,
    /// ...up to this cap.
    pub max_delay: Duration,
    /// No retry starts after this much time since the first attempt began.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    /// Lets 32 workers hammering one row finish: up to 100 attempts, sleeps up to 1 ms, 2 ms, 4 ms, ...
    /// capped at 100 ms, and no retry after 30 s.
    fn default() -> Self {
        Self {
            max_attempts: 100,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(100),
            deadline: Duration::from_secs(30),
        }
    }
}

/// The result of a retried unit of work, and how many attempts it took.
#[derive(Debug)]
pub struct Retried<T, E> {
    pub result: Result<T, E>,
    pub attempts: u32,
}

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryPolicyError {
    #[error("max_attempts must be between 1 and {max}, got {got}")]
    Attempts { got: u32, max: u32 },
    #[error("max_delay ({max_delay:?}) must not be below base_delay ({base_delay:?})")]
    Delays { base_delay: Duration, max_delay: Duration },
    #[error("deadline must be between 1 ms and 1 hour, got {0:?}")]
    Deadline(Duration),
}

impl RetryPolicy {
    /// The most attempts a policy may ask for.
    pub const MAX_ATTEMPTS: u32 = 100_000;

    /// One attempt, no retry: what the seed's ORM demo did.
    pub fn no_retry() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// Checks the policy's bounds.
    pub fn validate(&self) -> Result<(), RetryPolicyError> {
        if !(1..=Self::MAX_ATTEMPTS).contains(&self.max_attempts) {
            return Err(RetryPolicyError::Attempts { got: self.max_attempts, max: Self::MAX_ATTEMPTS });
        }
        if self.max_delay < self.base_delay {
            return Err(RetryPolicyError::Delays { base_delay: self.base_delay, max_delay: self.max_delay });
        }
        if self.deadline < Duration::from_millis(1) || self.deadline > Duration::from_secs(3600) {
            return Err(RetryPolicyError::Deadline(self.deadline));
        }
        Ok(())
    }

    /// The upper bound of the sleep before retry `n` (0-based): `min(cap, base * 2^n)`.
    pub fn delay_bound(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The sleeps between attempts, starting now.
    pub fn backoff(&self) -> FullJitterBackoff {
        self.backoff_from(Instant::now())
    }

    /// The sleeps between attempts of a unit of work that started at `started`.
    pub fn backoff_from(&self, started: Instant) -> FullJitterBackoff {
        FullJitterBackoff { policy: *self, retries: 0, started }
    }

    /// A retry loop driver, for loops that cannot be closures (a unit of work that borrows a
    /// connection mutably, say).
    pub fn retrier(&self) -> Retrier {
        Retrier { backoff: self.backoff(), attempt: 1 }
    }

    /// Runs `unit_of_work(attempt)` (attempt counts from 1) until it succeeds, fails with a kind that
    /// is not retryable, or the policy runs out of attempts or time.
    pub async fn run<T, E, F, Fut>(&self, mut unit_of_work: F) -> Retried<T, E>
    where
        E: Classify,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut retrier = self.retrier();
        loop {
            let result = unit_of_work(retrier.attempt()).await;
            match &result {
                Err(err) if retrier.retry_after(err.kind()).await => continue,
                _ => {
                    return Retried { result, attempts: retrier.attempt() };
                }
            }
        }
    }
}

/// Drives one retry loop: which attempt this is, and whether (after a sleep) to make another.
#[derive(Debug)]
pub struct Retrier {
    backoff: FullJitterBackoff,
    attempt: u32,
}

impl Retrier {
    /// The current attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// After a failure of `kind`: sleeps and returns `true` if another attempt should be made.
    pub async fn retry_after(&mut self, kind: ErrorKind) -> bool {
        if !kind.is_retryable() {
            return false;
        }
        let Some(sleep) = self.backoff.next() else {
            return false;
        };
        if !sleep.is_zero() {
            tokio::time::sleep(sleep).await;
        }
        self.attempt += 1;
        true
    }
}

/// backon-compatible backoff: exponential with full jitter, bounded by attempts and a deadline.
#[derive(Debug, Clone)]
pub struct FullJitterBackoff {
    policy: RetryPolicy,
    retries: u32,
    started: Instant,
}

impl Iterator for FullJitterBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.retries + 1 >= self.policy.max_attempts {
            return None;
        }
        let bound = self.policy.delay_bound(self.retries);
        let sleep = if bound.is_zero() { Duration::ZERO } else { rand::random_range(Duration::ZERO..=bound) };
        if self.started.elapsed() + sleep >= self.policy.deadline {
            return None;
        }
        self.retries += 1;
        Some(sleep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DbError;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 12,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(50),
            deadline: Duration::from_secs(3600),
        }
    }

    #[test]
    fn every_sleep_is_within_the_full_jitter_bound() {
        let policy = policy();
        for _ in 0..200 {
            let sleeps: Vec<Duration> = policy.backoff().collect();
            assert_eq!(sleeps.len(), 11, "12 attempts means 11 sleeps");
            for (n, sleep) in sleeps.iter().enumerate() {
                let bound = Duration::from_millis(2 * (1 << n)).min(Duration::from_millis(50));
                assert!(*sleep <= bound, "retry {n}: slept {sleep:?} > {bound:?}");
            }
        }
    }

    #[test]
    fn jitter_is_spread_over_the_whole_range() {
        // Full jitter, not "delay plus a little": the first sleep lands in the lower half of its
        // range about half the time.
        let policy = RetryPolicy { max_delay: Duration::from_secs(1), base_delay: Duration::from_secs(1), ..policy() };
        let low = (0..400).filter(|_| policy.backoff().next().unwrap() < Duration::from_millis(500)).count();
        assert!((100..300).contains(&low), "{low} of 400 below half");
    }

    #[test]
    fn bound_doubles_then_caps() {
        let p = policy();
        assert_eq!(p.delay_bound(0), Duration::from_millis(2));
        assert_eq!(p.delay_bound(3), Duration::from_millis(16));
        assert_eq!(p.delay_bound(5), Duration::from_millis(50));
        assert_eq!(p.delay_bound(200), Duration::from_millis(50));
    }

    #[test]
    fn no_sleep_is_offered_after_the_deadline() {
        let p = RetryPolicy { deadline: Duration::from_secs(5), ..policy() };
        let long_ago = Instant::now().checked_sub(Duration::from_secs(6)).unwrap();
        assert_eq!(p.backoff_from(long_ago).next(), None);
        assert!(p.backoff_from(Instant::now()).next().is_some());
    }

    #[tokio::test]
    async fn attempts_are_bounded_and_counted() {
        let p = RetryPolicy { max_attempts: 4, base_delay: Duration::ZERO, max_delay: Duration::ZERO, ..policy() };
        let mut calls = 0;
        let retried: Retried<(), DbError> = p
            .run(|_| {
                calls += 1;
                async { Err(DbError::new(ErrorKind::SerializationFailure, "conflict")) }
            })
            .await;
        assert_eq!((calls, retried.attempts), (4, 4));
        assert_eq!(retried.result.unwrap_err().kind(), ErrorKind::SerializationFailure);
    }

    #[tokio::test]
    async fn errors_that_are_not_retryable_end_at_once() {
        let mut calls = 0;
        let retried: Retried<(), DbError> = policy()
            .run(|_| {
                calls += 1;
                async { Err(DbError::new(ErrorKind::ConnectionLost, "gone")) }
            })
            .await;
        assert_eq!((calls, retried.attempts), (1, 1));
    }

    #[test]
    fn validation_names_the_bad_bound() {
        assert!(RetryPolicy::default().validate().is_ok());
        let zero = RetryPolicy { max_attempts: 0, ..RetryPolicy::default() };
        assert!(zero.validate().unwrap_err().to_string().contains("max_attempts"));
        let inverted = RetryPolicy { max_delay: Duration::ZERO, ..RetryPolicy::default() };
        assert!(inverted.validate().unwrap_err().to_string().contains("max_delay"));
    }
}
