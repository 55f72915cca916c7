//! The operations every backend runs alike, written once: each sends its dialect's rendering of one
//! statement of [`super::sql`] and reads the answer the same way. [`Dialect`]'s default methods are
//! these; a backend overrides one only where it truly differs (SQLite's locking read, MariaDB's
//! values handed back through `LAST_INSERT_ID`).
//!
//! Every driver error leaves through the dialect's classification ([`db_err`]); nothing here opens
//! or ends a transaction it was not asked to.

use super::dialect::Returned;
use super::driver::{Arg, Driver, RowsAffected};
use super::statement::Statement;
use super::{
    Conn, Counter, Dialect, LockMode, Pk, PostRow, StoredResponse, db_err, locked_row, not_found,
    relabel_for_lock_mode, slot_error,
};
use crate::error::{AtMaximum, DbError, ErrorKind};

/// Runs one statement that returns nothing the caller needs.
pub(crate) async fn run<D: Dialect>(c: &mut Conn<D::Db>, sql: &'static str) -> Result<(), DbError> {
    D::Db::execute_raw(c, sql).await.map(drop).map_err(db_err::<D>)
}

/// Runs one statement; how many rows it matched.
async fn affected<D: Dialect>(c: &mut Conn<D::Db>, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, DbError> {
    let done = D::Db::execute(c, sql, args).await.map_err(db_err::<D>)?;
    Ok(done.rows_affected())
}

/// `like, version` of post `pk` as `sql` reads them, or `None` if it has no row.
async fn pair<D: Dialect>(c: &mut Conn<D::Db>, sql: &'static str, pk: Pk) -> Result<Option<(i64, i64)>, sqlx::Error> {
    match D::Db::fetch_optional(c, sql, &[Arg::Int(pk)]).await? {
        Some(row) => Ok(Some((D::Db::int(&row, 0)?, D::Db::int(&row, 1)?))),
        None => Ok(None),
    }
}

pub(crate) async fn read<D: Dialect>(c: &mut Conn<D::Db>, pk: Pk) -> Result<Counter, DbError> {
    let row = pair::<D>(c, &D::statements().read, pk).await.map_err(db_err::<D>)?;
    super::read_counter(row, pk)
}

pub(crate) async fn read_for_update<D: Dialect>(
    c: &mut Conn<D::Db>,
    pk: Pk,
    mode: LockMode,
) -> Result<Counter, DbError> {
    let statements = D::statements();
    let sql = match mode {
        LockMode::Wait => &statements.read_for_update[0],
        LockMode::NoWait => &statements.read_for_update[1],
        LockMode::SkipLocked => &statements.read_for_update[2],
    };
    let row = pair::<D>(c, sql, pk).await.map_err(|e| relabel_for_lock_mode(db_err::<D>(e), mode))?;
    locked_row::<D>(c, pk, row, mode).await
}

/// The post's `like` and `version` with its slots', each a sum checked here: a total past the maximum
/// is a [`ErrorKind::CounterOverflow`] naming the post, never a wrapped or clamped number.
pub(crate) async fn read_total<D: Dialect>(c: &mut Conn<D::Db>, pk: Pk) -> Result<Counter, DbError> {
    let row = D::Db::fetch_optional(c, &D::statements().read_total, &[Arg::Int(pk)]).await.map_err(db_err::<D>)?;
    let Some(row) = row else { return Err(not_found(pk)) };
    let decoded = (|| {
        Ok::<_, sqlx::Error>([D::Db::int(&row, 0)?, D::Db::int(&row, 1)?, D::Db::int(&row, 2)?, D::Db::int(&row, 3)?])
    })();
    let [like, slots_like, version, slots_version] = decoded.map_err(db_err::<D>)?;
    Ok(Counter { like: total(pk, "like", like, slots_like)?, version: total(pk, "version", version, slots_version)? })
}

/// The post's own `value` of `counter` plus its slots', or the refusal to name a total past the maximum.
fn total(pk: Pk, counter: &'static str, value: i64, slots: i64) -> Result<i64, DbError> {
    value.checked_add(slots).ok_or_else(|| DbError::at_maximum(AtMaximum { post: pk, counter, value, adding: slots }))
}

pub(crate) async fn load<D: Dialect>(c: &mut Conn<D::Db>, pk: Pk) -> Result<PostRow, DbError> {
    let row = D::Db::fetch_optional(c, &D::statements().load, &[Arg::Int(pk)]).await.map_err(db_err::<D>)?;
    let Some(row) = row else { return Err(not_found(pk)) };
    let decoded = (|| {
        Ok::<_, sqlx::Error>(PostRow {
            pk: D::Db::int(&row, 0)?,
            like: D::Db::int(&row, 1)?,
            version: D::Db::int(&row, 2)?,
            modified_at: D::Db::time(&row, 3)?,
        })
    })();
    decoded.map_err(db_err::<D>)
}

pub(crate) async fn write<D: Dialect>(c: &mut Conn<D::Db>, pk: Pk, like: i64) -> Result<(), DbError> {
    let matched = affected::<D>(c, &D::statements().write, &[Arg::Int(like), Arg::Int(pk)]).await?;
    if matched == 0 { Err(not_found(pk)) } else { Ok(()) }
}

pub(crate) async fn write_if_version<D: Dialect>(
    c: &mut Conn<D::Db>,
    pk: Pk,
    like: i64,
    expected_version: i64,
) -> Result<bool, DbError> {
    let args = [Arg::Int(like), Arg::Int(pk), Arg::Int(expected_version)];
    Ok(affected::<D>(c, &D::statements().write_if_version, &args).await? == 1)
}

pub(crate) async fn delete_if_version<D: Dialect>(
    c: &mut Conn<D::Db>,
    pk: Pk,
    expected_version: i64,
) -> Result<bool, DbError> {
    let args = [Arg::Int(pk), Arg::Int(expected_version)];
    Ok(affected::<D>(c, &D::statements().delete_if_version, &args).await? == 1)
}

pub(crate) async fn increment_by<D: Dialect>(c: &mut Conn<D::Db>, pk: Pk, by: i64) -> Result<i64, DbError> {
    let args = [Arg::Int(by), Arg::Int(pk), Arg::Int(by)];
    match D::returned(c, &D::statements().increment_by, &args).await.map_err(db_err::<D>)? {
        Some(like) => like,
        None => Err(why_not_incremented::<D>(c, pk, by).await),
    }
}

/// Why the guarded increment wrote no row: the post is missing, or its `like` cannot take `by` more.
/// In autocommit the row may have changed since (a write that made room): that is a conflict, retried.
async fn why_not_incremented<D: Dialect>(c: &mut Conn<D::Db>, pk: Pk, by: i64) -> DbError {
    match read::<D>(c, pk).await {
        Ok(Counter { like, .. }) if like.checked_add(by).is_none() => {
            DbError::at_maximum(AtMaximum { post: pk, counter: "like", value: like, adding: by })
        }
        Ok(_) => DbError::new(ErrorKind::StaleVersion, format!("post {pk} changed while its like was refused")),
        Err(err) => err,
    }
}

pub(crate) async fn increment_slot_by<D: Dialect>(
    c: &mut Conn<D::Db>,
    pk: Pk,
    slot: u16,
    by: i64,
) -> Result<i64, DbError> {
    let args = [Arg::Int(pk), Arg::Int32(i32::from(slot)), Arg::Int(by), Arg::Int(by)];
    let like = D::returned(c, &D::statements().increment_slot_by, &args).await.map_err(|e| slot_error::<D>(e, pk))?;
    // An upsert always writes its row: no answer would mean the post's row refused it.
    like.ok_or_else(|| not_found(pk))?
}

pub(crate) async fn clear_slots<D: Dialect>(c: &mut Conn<D::Db>, pk: Pk) -> Result<(), DbError> {
    affected::<D>(c, &D::statements().clear_slots, &[Arg::Int(pk)]).await.map(drop)
}

pub(crate) async fn ensure_post<D: Dialect>(c: &mut Conn<D::Db>, pk: Pk) -> Result<(), DbError> {
    affected::<D>(c, &D::statements().ensure_post, &[Arg::Int(pk)]).await.map(drop)
}

pub(crate) async fn reset_post<D: Dialect>(c: &mut Conn<D::Db>, pk: Pk) -> Result<(), DbError> {
    affected::<D>(c, &D::statements().reset_post, &[Arg::Int(pk)]).await.map(drop)
}

/// Inserts an idempotency key; `false` if it exists (a duplicate key, or an insert that did nothing).
/// The answer's placeholders are replaced before this transaction commits: no one else sees them.
pub(crate) async fn insert_idempotency_key<D: Dialect>(
    c: &mut Conn<D::Db>,
    key: &str,
    fingerprint: &str,
) -> Result<bool, DbError> {
    let args = [Arg::Text(key), Arg::Text(fingerprint)];
    match D::Db::execute(c, &D::statements().insert_idempotency_key, &args).await {
        Ok(done) => Ok(done.rows_affected() == 1),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(err) => Err(db_err::<D>(err)),
    }
}

pub(crate) async fn save_idempotent_response<D: Dialect>(
    c: &mut Conn<D::Db>,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), DbError> {
    let args = [Arg::Int32(i32::from(status)), Arg::Text(body), Arg::Text(key)];
    affected::<D>(c, &D::statements().save_idempotent_response, &args).await.map(drop)
}

pub(crate) async fn idempotent_response<D: Dialect>(
    c: &mut Conn<D::Db>,
    key: &str,
) -> Result<Option<StoredResponse>, DbError> {
    let sql = &D::statements().idempotent_response;
    let row = D::Db::fetch_optional(c, sql, &[Arg::Text(key)]).await.map_err(db_err::<D>)?;
    let Some(row) = row else { return Ok(None) };
    let decoded = (|| Ok::<_, sqlx::Error>((D::Db::text(&row, 0)?, D::Db::int32(&row, 1)?, D::Db::text(&row, 2)?)))();
    let (fingerprint, status, body) = decoded.map_err(db_err::<D>)?;
    Ok(Some(StoredResponse::new(fingerprint, status, body)))
}

/// The value a statement wrote, handed back by `RETURNING`; `None` if it wrote no row.
pub(crate) async fn returning<D: Dialect>(c: &mut Conn<D::Db>, sql: &'static str, args: &[Arg<'_>]) -> Returned {
    match D::Db::fetch_optional(c, sql, args).await? {
        Some(row) => Ok(Some(Ok(D::Db::int(&row, 0)?))),
        None => Ok(None),
    }
}

/// Runs a workload's statement; how many rows it matched.
pub(crate) async fn exec<D: Dialect>(
    c: &mut Conn<D::Db>,
    stmt: &'static Statement,
    args: &[Arg<'_>],
) -> Result<u64, DbError> {
    affected::<D>(c, stmt.text_for::<D>(), args).await
}

/// Runs a workload's statement; how many rows it matched, or `None` if a CHECK constraint refused it.
pub(crate) async fn exec_unless_check<D: Dialect>(
    c: &mut Conn<D::Db>,
    stmt: &'static Statement,
    args: &[Arg<'_>],
) -> Result<Option<u64>, DbError> {
    match D::Db::execute(c, stmt.text_for::<D>(), args).await {
        Ok(done) => Ok(Some(done.rows_affected())),
        Err(err) if D::is_check_violation(&err) => Ok(None),
        Err(err) => Err(db_err::<D>(err)),
    }
}

/// The first `columns` integer columns of `row`.
fn ints<D: Dialect>(row: &<D::Db as sqlx::Database>::Row, columns: usize) -> Result<Vec<i64>, DbError> {
    (0..columns).map(|i| D::Db::int(row, i).map_err(db_err::<D>)).collect()
}

pub(crate) async fn fetch_ints<D: Dialect>(
    c: &mut Conn<D::Db>,
    stmt: &'static Statement,
    args: &[Arg<'_>],
    columns: usize,
) -> Result<Option<Vec<i64>>, DbError> {
    let row = D::Db::fetch_optional(c, stmt.text_for::<D>(), args).await.map_err(db_err::<D>)?;
    row.map(|row| ints::<D>(&row, columns)).transpose()
}

pub(crate) async fn fetch_all_ints<D: Dialect>(
    c: &mut Conn<D::Db>,
    stmt: &'static Statement,
    args: &[Arg<'_>],
    columns: usize,
) -> Result<Vec<Vec<i64>>, DbError> {
    let rows = D::Db::fetch_all(c, stmt.text_for::<D>(), args).await.map_err(db_err::<D>)?;
    rows.iter().map(|row| ints::<D>(row, columns)).collect()
}

/// `count` rows inserted by `stmt` with the same `args`, their keys in order: [`Statement::ROWS`] at a
/// time by one multi-row insert handing its keys back with `RETURNING id`, the rest one by one.
pub(crate) async fn insert_ids<D: Dialect>(
    c: &mut Conn<D::Db>,
    stmt: &'static Statement,
    args: &[Arg<'_>],
    count: usize,
) -> Result<Vec<i64>, DbError> {
    let mut keys = Vec::with_capacity(count);
    let many: Vec<Arg<'_>> = args.iter().copied().cycle().take(args.len() * Statement::ROWS).collect();
    while count - keys.len() >= Statement::ROWS {
        let rows = D::Db::fetch_all(c, stmt.rows_text_for::<D>(), &many).await.map_err(db_err::<D>)?;
        let mut inserted =
            rows.iter().map(|row| D::Db::int(row, 0)).collect::<Result<Vec<_>, _>>().map_err(db_err::<D>)?;
        if inserted.len() != Statement::ROWS {
            return Err(DbError::new(ErrorKind::Other, "a multi-row insert handed back fewer keys than rows"));
        }
        // RETURNING promises the rows, not their order; keys grow in the order rows are inserted.
        inserted.sort_unstable();
        keys.extend(inserted);
    }
    while keys.len() < count {
        keys.push(D::insert_id(c, stmt, args).await?);
    }
    Ok(keys)
}

/// An insert that hands its new key back with `RETURNING id`.
pub(crate) async fn insert_id<D: Dialect>(
    c: &mut Conn<D::Db>,
    stmt: &'static Statement,
    args: &[Arg<'_>],
) -> Result<i64, DbError> {
    let row = D::Db::fetch_optional(c, stmt.text_for::<D>(), args).await.map_err(db_err::<D>)?;
    let Some(row) = row else { return Err(DbError::new(ErrorKind::Other, "an insert handed back no key")) };
    D::Db::int(&row, 0).map_err(db_err::<D>)
}
