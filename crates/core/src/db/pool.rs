//! How the pool makes sure a connection it hands out still works, without paying a round trip for it
//! on every acquire.
//!
//! sqlx pings every connection as it goes back to the pool, and closes one whose ping fails (a query
//! that broke it, a server that went away during the request). Its default also pings every
//! connection again as it comes out (`test_before_acquire`): on a hot post liked by one client, that
//! second ping is one round trip in every like, a third of a like's time on loopback. (A session that
//! ends clean skips the first as well: its connection is kept warm for the next session, see `warm`.)
//!
//! So a connection is tested as it comes out only when it has been idle for longer than
//! [`PING_AFTER_IDLE`]: one handed back moments ago passed its release ping (or had its last statement
//! answered) moments ago. One that waited through an outage (or through a quiet spell in which the
//! server, a proxy or a failover may have dropped it) is pinged, and a dead one is closed and replaced
//! by a new connection, never handed to a request. What stays is the same window every check leaves
//! (a server that dies between the check and the statement), only as long as [`PING_AFTER_IDLE`]
//! instead of one round trip: a request that meets it fails as any request cut by an outage does,
//! answered and counted as failed or in doubt.

use std::time::Duration;

use sqlx::Connection;

/// How long an idle connection is trusted on the strength of its release ping; one idle for longer is
/// pinged before it is handed out.
pub const PING_AFTER_IDLE: Duration = Duration::from_millis(100);

/// The `before_acquire` hook: pings a connection idle for longer than [`PING_AFTER_IDLE`]. An error closes
/// the connection, and the pool opens another for the caller.
pub(super) fn ping_if_idle<DB: sqlx::Database>(
    conn: &mut DB::Connection,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if meta.idle_for > PING_AFTER_IDLE {
            conn.ping().await?;
        }
        Ok(true)
    })
}
