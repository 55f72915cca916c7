//! A cell of the anomaly matrix in a few characters, for the tests that assert whole matrices.

use racelab_core::anomalies::{Cell, How, Verdict};

/// `A` the anomaly happened, `P` it was prevented; then how: `blk@5` a lock wait at step 5 (until
/// the other transaction ended), `deadlock@6` an error of that kind at step 6, nothing if every step
/// answered at once (a snapshot decided).
pub fn token(cell: &Cell) -> String {
    let verdict = match cell.verdict {
        Verdict::Anomaly => "A",
        Verdict::Prevented => "P",
    };
    match &cell.how {
        How::Nothing => verdict.to_owned(),
        How::Blocked { step, .. } => format!("{verdict} blk@{step}"),
        How::Error { step, kind, .. } => format!("{verdict} {kind}@{step}"),
    }
}
