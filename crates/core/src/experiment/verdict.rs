//! Reading an outcome: whether the proof holds, why increments failed, and the one line a newcomer
//! understands. Only reads the figures, never changes one.

use super::outcome::Outcome;
use crate::error::ErrorKind;

impl Outcome {
    /// Whether the proof holds: every acknowledged increment is in the row, and nothing is there that
    /// the in-doubt ones cannot explain (`acknowledged <= actual <= acknowledged + in_doubt`). `None`
    /// when the counter could not be read.
    pub fn invariant_holds(&self) -> Option<bool> {
        let actual = self.actual?;
        let acknowledged = self.acknowledged as i64;
        Some(acknowledged <= actual && actual <= acknowledged + self.in_doubt as i64)
    }

    /// Whether every increment that did not succeed was refused by a lock (`NOWAIT`, `SKIP LOCKED`, a
    /// lock timeout) and none succeeded: the row was held by someone else the whole time.
    pub fn refused_by_locks(&self) -> bool {
        self.acknowledged == 0
            && self.in_doubt == 0
            && self.failed > 0
            && self.errors.iter().all(|(kind, _)| kind.is_lock_refusal())
    }

    /// Whether the database was out of reach: the counter could not be read, or increments failed
    /// because no connection could be had or kept.
    /// The primary changed during the run (a failover of a host list) and the run went on on the new
    /// one with nothing acknowledged missing: an outage the outcome fully accounts for.
    pub fn survived_failover(&self) -> bool {
        self.actual.is_some() && self.failover.as_ref().is_some_and(|f| f.failed_over && f.acknowledged_lost == Some(0))
    }

    /// Acknowledged increments the new primary does not have after a failover (asynchronous
    /// replication lost them), if any.
    pub fn lost_at_failover(&self) -> Option<u64> {
        self.failover.as_ref().filter(|f| f.failed_over).and_then(|f| f.acknowledged_lost).filter(|n| *n > 0)
    }

    pub fn database_unavailable(&self) -> bool {
        self.counter_error.is_some() || self.in_doubt > 0 || self.errors.keys().any(|kind| kind.means_unreachable())
    }

    /// One line a newcomer understands.
    pub fn verdict(&self) -> String {
        let failover = self.failover.as_ref().filter(|f| f.failed_over);
        let mut verdict = match (self.actual, self.lost) {
            (Some(_), _) if let Some(lost) = failover.and_then(|f| f.acknowledged_lost).filter(|l| *l > 0) => format!(
                "{lost} {} this client was told had committed {} not in the database: asynchronous replication lost \
                 {} at failover (the primary acknowledged them before any replica had them); synchronous replication \
                 (Patroni's synchronous_mode, synchronous_commit on) prevents it",
                plural(lost, "increment", "increments"),
                plural(lost, "is", "are"),
                plural(lost, "it", "them")
            ),
            (None, _) => format!(
                "the counter could not be read after the run ({}): {} acknowledged increments cannot be checked",
                self.counter_error.map_or("unknown", ErrorKind::as_str),
                self.acknowledged
            ),
            (Some(_), None) if self.foreign_writes != 0 => format!(
                "another writer changed post {} during the run ({} writes not ours): lost updates cannot be counted",
                self.post, self.foreign_writes
            ),
            (Some(actual), None) => format!(
                "the row moved by {actual}, more than the {} increments this run could have made: another writer",
                self.acknowledged + self.in_doubt
            ),
            (Some(_), Some(lost)) if lost > 0 => format!(
                "lost {lost} of {} updates: concurrent read-modify-writes read the same value and overwrote each other",
                self.acknowledged + self.in_doubt_committed.unwrap_or(0)
            ),
            (Some(_), Some(_)) if self.dropped > 0 => format!(
                "dropped {} of {} increments: the version check caught each conflict, but nothing retried it; \
                 no acknowledged update lost",
                self.dropped, self.expected
            ),
            (Some(_), Some(_)) if self.retries > 0 => {
                format!("no update lost, {} {}", self.retries, plural(self.retries, "retry", "retries"))
            }
            (Some(_), Some(_)) => "no update lost".to_owned(),
        };
        if let Some(f) = failover {
            let timelines = match (f.timeline_before, f.timeline_after) {
                (Some(before), Some(after)) => format!("timeline {before} -> {after}"),
                _ => "timeline unknown".to_owned(),
            };
            let hosts = match (f.host_before, f.host_after) {
                (Some(before), Some(after)) => format!(", host {before} -> {after}"),
                _ => String::new(),
            };
            let kept = if f.acknowledged_lost == Some(0) { "; every acknowledged increment kept" } else { "" };
            verdict.push_str(&format!(
                "; failover ({timelines}{hosts}){kept}: no write acknowledged for {:.1} s ({} failed, {} in doubt then)",
                f.write_gap_ms / 1000.0,
                f.failed_in_gap,
                f.in_doubt_in_gap
            ));
        }
        if self.in_doubt > 0 {
            let committed = match self.in_doubt_committed {
                Some(n) => format!(", {n} of them committed"),
                None => String::new(),
            };
            verdict.push_str(&format!(
                "; {} in doubt (the connection was lost during the commit{committed})",
                self.in_doubt
            ));
        }
        if self.failed > self.dropped {
            let kinds: Vec<String> = self.errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            verdict.push_str(&format!("; {} increments gave up ({})", self.failed, kinds.join(", ")));
        }
        verdict
    }
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}
