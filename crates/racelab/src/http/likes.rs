//! `POST /posts/{pk}/likes`: one like, made with the strategy the service was started with
//! (`serve --like-strategy`, default `atomic`). With an `Idempotency-Key`
//! (draft-ietf-httpapi-idempotency-key-header-07) the like happens once however often the request is
//! sent: the key, the request and the answer are stored in the like's own transaction (see
//! `racelab_core::likes`), a retry gets the stored answer (`Idempotent-Replayed: true`), the key used
//! for another post is 422, and a retry that waits longer than the lock timeout for the first request
//! to finish is 409. With `serve --combine-likes`, concurrent likes on one post are made together in
//! one transaction (see `combining.rs`).
//!
//! ```sh
//! curl -si -X POST http://127.0.0.1:8000/posts/2/likes -H 'Idempotency-Key: "8e03978e-40d5"'
//! ```
//!
//! A like must never be made twice for one key, nor answered before its transaction has committed.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use racelab_core::likes::{LikeRequest, Liked};
use racelab_core::{ErrorKind, Pk};
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::response::Response as ResponseDoc;
use utoipa::{IntoResponses, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::combining::ROUTE;
use super::echo::echo;
use super::error::ApiError;
use super::openapi::problems;
use super::post_key::PostKey;
use super::state::AppState;

/// The request header that carries the key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on an answer replayed from the store.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The longest key accepted (the column's width).
pub const MAX_KEY_LENGTH: usize = 255;

/// The routes of this module, documented.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(like_post))
}

/// How often expired keys are purged.
pub const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Purges expired keys every [`PURGE_EVERY`], in short batches beside the likes (never holding a
/// lock a like needs for long), for as long as the service runs.
pub async fn purge_expired_keys(state: AppState) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    loop {
        every.tick().await;
        let Some(db) = state.connected_db() else { continue };
        match db.purge_idempotency_keys(state.likes().key_ttl).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired idempotency keys purged"),
            Err(err) => tracing::warn!(%err, "purging expired idempotency keys failed; trying again later"),
        }
    }
}

/// The answer to a like.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(example = json!({"pk": 2, "like": 51}))]
pub struct LikeBody {
    pub pk: i64,
    /// The post's count after this like.
    pub like: i64,
}

/// The key of a request, if it has one. The draft defines the field as a Structured Field (RFC 9651)
/// Item whose value is a String (`"8e03978e-40d5"`), and [`sfv`] parses it as one: an unbalanced
/// quote, parameters, a list or a field sent twice (which key would count is not the server's to
/// guess) is refused. A **bare word** ([`is_bare_word`]: HTTP token characters, plus `:` and `/` as
/// Structured Field Tokens allow, starting with a letter, a digit or `*`) is taken too, as the key of its characters: what `curl -H
/// 'Idempotency-Key: 8e03978e-40d5'` sends and what this server always took, a bare UUID (which is
/// not a Structured Field Token: it may start with a digit) or number included. A bare word cannot
/// be mistaken for anything else: it has no quote, no parameter and no list separator. The key itself
/// is 1 to [`MAX_KEY_LENGTH`] visible ASCII characters: no space, which MariaDB's PAD SPACE
/// comparison would ignore at the end of a key (`"a "` the same as `"a"`).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(&IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = |reason: String| ApiError::InvalidPart { part: "header", name: IDEMPOTENCY_KEY.to_string(), reason };
    if values.next().is_some() {
        return Err(invalid("must be sent once, with one key".into()));
    }
    let raw = value.to_str().map_err(|_| invalid("must be visible ASCII".into()))?;
    let parsed: Option<sfv::Item> = sfv::Parser::new(raw).parse().ok();
    let key = match &parsed {
        Some(item) if item.params.is_empty() && matches!(item.bare_item, sfv::BareItem::String(_)) => {
            let sfv::BareItem::String(key) = &item.bare_item else { unreachable!("matched above") };
            key.as_str()
        }
        _ if is_bare_word(raw) => raw,
        Some(item) if !item.params.is_empty() => {
            return Err(invalid(format!("must be a String without parameters, got `{}`", echo(raw))));
        }
        _ => {
            let reason = format!(
                "must be a String (RFC 9651) such as `\"8e03978e-40d5\"`, or the same characters bare, got `{}`",
                echo(raw)
            );
            return Err(invalid(reason));
        }
    };
    let valid = (1..=MAX_KEY_LENGTH).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        let reason = format!("must hold 1 to {MAX_KEY_LENGTH} visible ASCII characters, got `{}`", echo(raw));
        return Err(invalid(reason));
    }
    Ok(Some(key.to_owned()))
}

/// A bare key: a letter, a digit or `*`, then HTTP token characters (RFC 9110 `tchar`), `:` and `/`;
/// nothing that quotes, separates or parameterizes, and not a Structured Field Byte Sequence
/// (`:YWJj:`), which the draft's reader would decode.
fn is_bare_word(raw: &str) -> bool {
    let mut bytes = raw.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'*')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b))
}

fn count_like(keyed: bool) {
    metrics::counter!("racelab_likes_total", "route" => ROUTE, "keyed" => if keyed { "true" } else { "false" })
        .increment(1);
}

/// A JSON answer as stored (or just made), with its status.
fn stored_answer(status: u16, body: String, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// The errors of a like.
struct LikeErrors;

impl IntoResponses for LikeErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        problems(&[
            (
                400,
                "`pk` is not a positive integer, or `Idempotency-Key` is not one String (or bare word) of 1 to \
                 255 visible ASCII characters (or missing, on a server started with --require-idempotency-key)",
            ),
            (404, "No post has this key"),
            (
                409,
                "The request with this Idempotency-Key (or another write to the post) was still running after the \
                 lock timeout; retry (`idempotency-key-in-flight`). Or the post's count is at its maximum, \
                 9223372036854775807, and cannot take another like (`counter-at-maximum`, naming the post and its \
                 count)",
            ),
            (422, "This Idempotency-Key was used for another request (a like on another post)"),
            (503, "The database cannot be reached (with Retry-After)"),
        ])
    }
}

/// Adds one like. With `Idempotency-Key`, at most once per key: a retry answers what the first did.
#[utoipa::path(post, path = "/posts/{pk}/likes", tag = "posts",
    params(
        ("pk" = i64, Path, description = "The post's key", minimum = 1),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 512,
            pattern = r#"^(?:"(?:[!#-\[\]-~]|\\["\\]){1,255}"|[*0-9A-Za-z][-!#$%&'*+.^_`|~0-9A-Za-z:/]{0,254})$"#,
            description = "A key unique to this like (e.g. a UUID), the same on every retry of it: a Structured \
                Field String (RFC 9651) of 1 to 255 visible ASCII characters, `\"8e03978e-40d5\"`, or the same \
                characters bare when they are HTTP token characters (RFC 9110), `:` or `/`, starting with a letter, a \
                digit or `*` (a bare UUID is fine). \
                Sent once, without parameters. Kept 24 hours after its first use (`serve --idempotency-key-ttl`), \
                then purged within a minute."),
    ),
    responses(
        (status = 200, description = "Liked (or, with `Idempotent-Replayed: true`, the answer of the first request \
            with this key)", body = LikeBody),
        LikeErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(pk = pk, keyed = headers.contains_key(&IDEMPOTENCY_KEY)))]
pub async fn like_post(
    State(state): State<AppState>,
    PostKey(pk): PostKey,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let settings = state.likes();
    if key.is_none() && settings.require_key {
        return Err(ApiError::InvalidPart {
            part: "header",
            name: IDEMPOTENCY_KEY.to_string(),
            reason: "is required by this server (--require-idempotency-key): send a key unique to this like".into(),
        });
    }
    let keyed = key.is_some();
    // The like's request, whole: the endpoint reads no body, so the path says everything.
    let request = match key {
        Some(key) => LikeRequest::keyed(key, format!("POST /posts/{pk}/likes")),
        None => LikeRequest::default(),
    };
    let db = state.db().await?;
    let liked = if settings.combine {
        state.combiner().like(&db, settings.liker, pk, request, answer).await
    } else {
        let made = settings.liker.like(&db, pk, std::slice::from_ref(&request), |like| answer(pk, like)).await;
        made.map(|batch| batch.results.into_iter().next().expect("one like asked, one answered"))
    };
    match liked {
        Ok(Liked::Made { status, body, .. }) => {
            count_like(keyed);
            Ok(stored_answer(status, body, false))
        }
        Ok(Liked::Replayed { status, body }) => {
            metrics::counter!("racelab_idempotent_replays_total", "route" => ROUTE).increment(1);
            Ok(stored_answer(status, body, true))
        }
        Ok(Liked::KeyReused) => Err(ApiError::IdempotencyKeyReused),
        Err(err) if keyed && matches!(err.kind(), ErrorKind::LockTimeout | ErrorKind::Busy) => {
            tracing::info!(%err, "keyed like waited past the lock timeout");
            Err(ApiError::IdempotencyKeyInFlight)
        }
        Err(err) => Err(err.into()),
    }
}

/// A made like's answer (stored under its key, replayed as is).
fn answer(pk: Pk, like: i64) -> (u16, String) {
    let body = serde_json::to_string(&LikeBody { pk, like }).unwrap_or_default();
    (StatusCode::OK.as_u16(), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: &str) -> Result<Option<String>, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_str(value).unwrap());
        idempotency_key(&headers)
    }

    #[test]
    fn keys_are_sf_strings_or_bare_words() {
        assert_eq!(key("\"abc-1\"").unwrap().as_deref(), Some("abc-1"));
        assert_eq!(key("abc-1").unwrap().as_deref(), Some("abc-1"));
        // Bare words as curl users send them, as this server always took them.
        assert_eq!(key("8e03978e-40d5").unwrap().as_deref(), Some("8e03978e-40d5"));
        assert_eq!(key("42").unwrap().as_deref(), Some("42"));
        assert_eq!(key(r#""a\"b\\c""#).unwrap().as_deref(), Some(r#"a"b\c"#));
        assert_eq!(key(&format!("\"{}\"", "x".repeat(255))).unwrap().map(|k| k.len()), Some(255));
        assert!(idempotency_key(&HeaderMap::new()).unwrap().is_none());
    }

    #[test]
    fn anything_but_one_string_or_bare_word_is_refused() {
        for bad in ["\"\"", "\"abc", "\"abc\";x=1", "abc;x=1", "\"a b\"", "a b", "?1", ":YWJj:", "\"a\", \"b\""] {
            let Err(ApiError::InvalidPart { name, .. }) = key(bad) else { panic!("{bad:?} was taken") };
            assert_eq!(name, "idempotency-key");
        }
        assert!(key(&"x".repeat(256)).is_err());
        let mut twice = HeaderMap::new();
        twice.append(IDEMPOTENCY_KEY, HeaderValue::from_static("\"a\""));
        twice.append(IDEMPOTENCY_KEY, HeaderValue::from_static("\"b\""));
        assert!(idempotency_key(&twice).is_err());
    }
}
