//! After a run: what it wrote, read on the first node that answers, trying again until a timeout
//! (the database may be coming back, a node may be dead). What could not be read is reported as the
//! kind of error last seen, never hidden. The counter's read and the workloads' rows both go through
//! here.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::db::Database;
use crate::error::{DbError, ErrorKind};

/// One try on one node is bounded, so a dead or hung node (whose connection attempts the pool keeps
/// retrying until its acquire timeout) cannot use up the window the live ones need.
const PER_TRY: Duration = Duration::from_secs(1);

/// `read` on each of `nodes` in turn until one answers, for at most `timeout` in all, pausing 50 ms,
/// then twice as long each round (up to 1 s). An error of a kind `is_final` says is the answer, not a
/// state to wait out: it ends the reading at once. `what` names the read in the debug log.
pub(crate) async fn read_when_settled<'a, T, Fut>(
    nodes: &'a [Database],
    timeout: Duration,
    what: &str,
    is_final: impl Fn(ErrorKind) -> bool,
    read: impl Fn(&'a Database) -> Fut,
) -> Result<T, ErrorKind>
where
    Fut: Future<Output = Result<T, DbError>> + 'a,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        let mut last = ErrorKind::Other;
        for db in nodes {
            match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()).min(PER_TRY), read(db)).await
            {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(err)) if is_final(err.kind()) => return Err(err.kind()),
                Ok(Err(err)) => {
                    tracing::debug!(%err, node = %db.redacted_url(), "cannot read {what} yet");
                    last = err.kind();
                }
                Err(_) => last = ErrorKind::PoolTimeout,
            }
        }
        if Instant::now() + pause >= deadline {
            return Err(last);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}
