//! `/posts`: the post as a JSON resource with HTTP's own lost-update defence (RFC 9110 §13.1.1,
//! RFC 6585 §3). Its strong `ETag` is its `version`; a write must carry `If-Match` with it (428
//! without), and a stale one is refused (412, with the current `ETag`). The comparison and the write
//! are one conditional statement in the database (see `racelab_core::db::resource`): two clients
//! holding the same ETag cannot both succeed, however their requests interleave.
//!
//! ```sh
//! curl -si -X POST http://127.0.0.1:8000/posts
//! curl -si -X PATCH http://127.0.0.1:8000/posts/2 -H 'If-Match: "0"' -H 'Content-Type: application/json' \
//!     -d '{"like": 5}'
//! ```
//!
//! The lab's reset (`/test-db/init`) sets a post's version back to 0, so an ETag it saw before a reset
//! can match again after one: the lab endpoints are experiments, the resource API is for posts they
//! do not reset.
//!
//! A write must never succeed without naming the version it replaces.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use racelab_core::db::{Expected, PostRow, Precondition};
use racelab_core::{DbError, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::response::Response as ResponseDoc;
use utoipa::{IntoResponses, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::echo::echo;
use super::error::ApiError;
use super::json_body::{ApiJson, JsonBody, whole_number};
use super::openapi::problems;
use super::post_key::PostKey;
use super::state::AppState;

/// The routes of this module, documented.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_post)).routes(routes!(get_post, patch_post, delete_post))
}

/// A post as the resource API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"pk": 2, "like": 5, "version": 1, "modified_at": "2026-12-02T12:00:00.123456Z"}))]
pub struct PostBody {
    pub pk: i64,
    pub like: i64,
    /// Bumped by every write; the `ETag` is this number in quotes.
    pub version: i64,
    pub modified_at: DateTime<Utc>,
}

impl From<PostRow> for PostBody {
    fn from(row: PostRow) -> Self {
        Self { pk: row.pk, like: row.like, version: row.version, modified_at: row.modified_at }
    }
}

/// The body of `PATCH /posts/{pk}`: the members to change (only `like` can be).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"like": 5}))]
pub struct PatchPost {
    /// The new count.
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "integer_like")]
    pub like: i64,
}

impl JsonBody for PatchPost {
    // A JSON merge patch (RFC 7396) is what this body is; plain JSON is what most clients send.
    const MEDIA_TYPES: &'static [&'static str] = &["application/json", "application/merge-patch+json"];
    const NOT_AN_OBJECT: &'static str = "must be a JSON object such as {\"like\": 5}";

    fn unknown_member() -> String {
        "is not a member of a post that can be changed; only `like` is".to_owned()
    }

    fn missing(_member: &str) -> String {
        "is required".to_owned()
    }
}

/// Why `like` was refused, `text` being what was sent.
fn like_reason(text: &str) -> String {
    format!("must be an integer between 0 and {}, got `{}`", i64::MAX, echo(text))
}

/// `like` as JSON Schema's `integer` with `minimum: 0` reads it (`3.0` is 3), refused in the words of
/// [`like_reason`] with what was sent.
fn integer_like<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = Value::deserialize(deserializer)?;
    whole_number(&value)
        .filter(|like| *like >= 0)
        .ok_or_else(|| serde::de::Error::custom(like_reason(&value.to_string())))
}

/// The strong entity-tag of a version (RFC 9110 §8.8.3).
fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// `body` as JSON with the post's `ETag`.
fn with_etag(status: StatusCode, row: PostRow) -> Response {
    let tag = etag(row.version);
    let mut response = (status, Json(PostBody::from(row))).into_response();
    insert_etag(&mut response, &tag);
    response
}

fn insert_etag(response: &mut Response, tag: &str) {
    if let Ok(value) = HeaderValue::from_str(tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
}

// ---------------------------------------------------------------------------------------------------
// Reading the request: the path's key, the conditional headers, the body
// ---------------------------------------------------------------------------------------------------

/// An entity-tag of a conditional header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntityTag {
    weak: bool,
    opaque: String,
}

/// A conditional header's value: `*` or a list of entity-tags (RFC 9110 §13.1.1, §13.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Any,
    Tags(Vec<EntityTag>),
}

impl Condition {
    /// Reads header `name` (all its field lines); `None` if absent.
    fn from_headers(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<Self>, ApiError> {
        let invalid = |reason: String| ApiError::InvalidPart { part: "header", name: name.to_string(), reason };
        let mut values = Vec::new();
        for value in headers.get_all(&name) {
            values.push(value.to_str().map_err(|_| invalid("must be ASCII".into()))?);
        }
        if values.is_empty() {
            return Ok(None);
        }
        let joined = values.join(",");
        if joined.trim() == "*" {
            return Ok(Some(Condition::Any));
        }
        parse_tags(&joined)
            .map(|tags| Some(Condition::Tags(tags)))
            .map_err(|reason| invalid(format!("{reason}, got `{}`", echo(&joined))))
    }

    /// The versions a write may replace (strong comparison: a weak tag never matches).
    fn expected(&self) -> Expected {
        match self {
            Condition::Any => Expected::Any,
            Condition::Tags(tags) => {
                Expected::OneOf(tags.iter().filter(|t| !t.weak).filter_map(|t| version_of(&t.opaque)).collect())
            }
        }
    }

    /// Whether a representation at `version` matches (weak comparison, as `If-None-Match` uses).
    fn matches_weakly(&self, version: i64) -> bool {
        match self {
            Condition::Any => true,
            Condition::Tags(tags) => tags.iter().any(|t| version_of(&t.opaque) == Some(version)),
        }
    }
}

/// The version an opaque tag names, if it is one of ours (a plain decimal).
fn version_of(opaque: &str) -> Option<i64> {
    let canonical = !opaque.is_empty() && opaque.bytes().all(|b| b.is_ascii_digit());
    let canonical = canonical && (opaque == "0" || !opaque.starts_with('0'));
    canonical.then(|| opaque.parse().ok()).flatten()
}

/// `#entity-tag`: `"x"` or `W/"x"`, separated by commas and optional whitespace. The list may be empty
/// (RFC 9110 §5.6.1): it then matches nothing.
fn parse_tags(value: &str) -> Result<Vec<EntityTag>, String> {
    const EXPECTED: &str = "must be `*` or a list of entity-tags such as `\"3\"`";
    let mut tags = Vec::new();
    let mut rest = value.trim_start_matches([' ', '\t', ',']);
    while !rest.is_empty() {
        let (weak, quoted) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let inner = quoted.strip_prefix('"').ok_or(EXPECTED)?;
        let end = inner.find('"').ok_or(EXPECTED)?;
        let opaque = &inner[..end];
        // etagc: any visible ASCII but the double quote (obs-text is refused: these are ours).
        if !opaque.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b)) {
            return Err(EXPECTED.into());
        }
        tags.push(EntityTag { weak, opaque: opaque.to_owned() });
        let after = inner[end + 1..].trim_start_matches([' ', '\t']);
        if !(after.is_empty() || after.starts_with(',')) {
            return Err(EXPECTED.into());
        }
        rest = after.trim_start_matches([' ', '\t', ',']);
    }
    Ok(tags)
}

/// The `If-Match` a write must carry, as the versions it accepts.
fn required_if_match(headers: &HeaderMap) -> Result<Expected, ApiError> {
    Condition::from_headers(headers, header::IF_MATCH)?
        .map(|condition| condition.expected())
        .ok_or(ApiError::PreconditionRequired)
}

/// What a conditional write's outcome means to the client.
fn precondition<T>(outcome: Precondition<T>, pk: i64) -> Result<T, ApiError> {
    match outcome {
        Precondition::Met(value) => Ok(value),
        Precondition::Failed(current) => Err(ApiError::PreconditionFailed { etag: etag(current.version) }),
        Precondition::Missing => Err(DbError::new(ErrorKind::NotFound, format!("post {pk} does not exist")).into()),
    }
}

// ---------------------------------------------------------------------------------------------------
// Error answers, documented once
// ---------------------------------------------------------------------------------------------------

const INVALID_PK: (u16, &str) =
    (400, "`pk` is not a positive integer, or a conditional header is not `*` or a list of entity-tags");
const NOT_FOUND: (u16, &str) = (404, "No post has this key");
const CONFLICT: (u16, &str) = (409, "The database refused the write for a conflict with another transaction");
const UNAVAILABLE: (u16, &str) = (503, "The database cannot be reached (with Retry-After)");

/// The errors of `GET`.
struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        problems(&[INVALID_PK, NOT_FOUND, UNAVAILABLE])
    }
}

/// The errors of a conditional write.
struct WriteErrors;

impl IntoResponses for WriteErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        problems(&[
            INVALID_PK,
            NOT_FOUND,
            CONFLICT,
            (412, "`If-Match` does not name the current version; the answer's `ETag` does"),
            (428, "`If-Match` is missing: a write must name the version it replaces"),
            UNAVAILABLE,
        ])
    }
}

/// The errors of `PATCH` on top of a write's.
struct PatchErrors;

impl IntoResponses for PatchErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        problems(&[
            (415, "The body is not `application/json` (or `application/merge-patch+json`)"),
            (422, "A body member is missing, of the wrong type, out of range or unknown (named in `invalid_params`)"),
        ])
    }
}

// ---------------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------------

/// Creates a post with `like = 0`.
#[utoipa::path(post, path = "/posts", tag = "posts",
    responses(
        (status = 201, description = "Created", body = PostBody, headers(
            ("Location" = String, description = "The new post's URL"),
            ("ETag" = String, description = "The post's version, as a strong entity-tag"),
        )),
        (status = 503, description = "The database cannot be reached (with Retry-After)",
            body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_post(State(state): State<AppState>) -> Result<Response, ApiError> {
    let db = state.db().await?;
    let row = db.create_post_row().await?;
    let location = format!("/posts/{}", row.pk);
    let mut response = with_etag(StatusCode::CREATED, row);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Reads a post; `If-None-Match` with its current ETag answers 304 without a body.
#[utoipa::path(get, path = "/posts/{pk}", tag = "posts",
    params(
        ("pk" = i64, Path, description = "The post's key", minimum = 1),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "ETags the client holds (`*` or a list); 304 if one is current"),
    ),
    responses(
        (status = 200, description = "The post", body = PostBody, headers(
            ("ETag" = String, description = "The post's version, as a strong entity-tag"),
        )),
        (status = 304, description = "The client's copy is current", headers(
            ("ETag" = String, description = "The post's version, as a strong entity-tag"),
        )),
        ReadErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(pk = pk))]
pub async fn get_post(
    State(state): State<AppState>,
    PostKey(pk): PostKey,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let if_none_match = Condition::from_headers(&headers, header::IF_NONE_MATCH)?;
    let row = state.db().await?.load_post(pk).await?;
    if if_none_match.is_some_and(|condition| condition.matches_weakly(row.version)) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        insert_etag(&mut response, &etag(row.version));
        return Ok(response);
    }
    Ok(with_etag(StatusCode::OK, row))
}

/// Sets `like`, if `If-Match` names the current version.
#[utoipa::path(patch, path = "/posts/{pk}", tag = "posts",
    params(
        ("pk" = i64, Path, description = "The post's key", minimum = 1),
        ("If-Match" = String, Header, description = "The ETag of the version this change replaces (or `*`)"),
    ),
    request_body(content = PatchPost, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed", body = PostBody, headers(
            ("ETag" = String, description = "The new version, as a strong entity-tag"),
        )),
        WriteErrors,
        PatchErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(pk = pk, like = patch.like))]
pub async fn patch_post(
    State(state): State<AppState>,
    PostKey(pk): PostKey,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<PatchPost>,
) -> Result<Response, ApiError> {
    let expected = required_if_match(&headers)?;
    let outcome = state.db().await?.set_like_if_version(pk, patch.like, &expected).await?;
    Ok(with_etag(StatusCode::OK, precondition(outcome, pk)?))
}

/// Deletes a post, if `If-Match` names the current version.
#[utoipa::path(delete, path = "/posts/{pk}", tag = "posts",
    params(
        ("pk" = i64, Path, description = "The post's key", minimum = 1),
        ("If-Match" = String, Header, description = "The ETag of the version this deletes (or `*`)"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        WriteErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(pk = pk))]
pub async fn delete_post(
    State(state): State<AppState>,
    PostKey(pk): PostKey,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let expected = required_if_match(&headers)?;
    let outcome = state.db().await?.delete_post_if_version(pk, &expected).await?;
    precondition(outcome, pk).map(|()| StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::json_body;

    #[test]
    fn entity_tags_are_read_as_rfc_9110_writes_them() {
        let strong = |o: &str| EntityTag { weak: false, opaque: o.into() };
        assert_eq!(parse_tags(r#""3""#), Ok(vec![strong("3")]));
        assert_eq!(
            parse_tags(r#" "3" , W/"4","x,y""#),
            Ok(vec![strong("3"), EntityTag { weak: true, opaque: "4".into() }, strong("x,y")])
        );
        assert_eq!(parse_tags(""), Ok(vec![]));
        assert_eq!(parse_tags(" , "), Ok(vec![]));
        for bad in ["3", r#""3"#, r#""3" 4"#, r#"w/"3""#] {
            assert!(parse_tags(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_strong_tags_of_plain_decimals_name_versions() {
        let condition = Condition::Tags(parse_tags(r#""3", W/"4", "05", "0", "x""#).unwrap());
        assert_eq!(condition.expected(), Expected::OneOf(vec![3, 0]));
        assert!(condition.matches_weakly(4));
        assert!(!condition.matches_weakly(5));
    }

    #[test]
    fn a_patch_body_names_its_bad_member() {
        let read = json_body::members::<PatchPost>;
        let refusal = |body: &str| match read(serde_json::from_str(body).unwrap()) {
            Err(ApiError::InvalidBody { name, reason }) => (name, reason),
            other => panic!("{body}: {other:?}"),
        };
        let name = |body: &str| refusal(body).0;
        assert_eq!(read(serde_json::json!({"like": 7})).unwrap(), PatchPost { like: 7 });
        assert_eq!(read(serde_json::json!({"like": 7.0})).unwrap(), PatchPost { like: 7 });
        assert_eq!(name(r#"{"like": 1e19}"#), "like");
        assert_eq!(name(r#"{"like": -1}"#), "like");
        assert_eq!(name(r#"{"like": 1.5}"#), "like");
        assert_eq!(name(r#"{"like": "3"}"#), "like");
        assert_eq!(name(r#"{}"#), "like");
        assert_eq!(name(r#"{"like": 1, "version": 2}"#), "version");
        assert_eq!(name(r#"[1]"#), "body");
        // The words, as the hand-written reader had them.
        let range = format!("must be an integer between 0 and {}, got", i64::MAX);
        for (body, shown) in
            [(r#"{"like": -1.0}"#, "-1.0"), (r#"{"like": "3"}"#, "\"3\""), (r#"{"like": null}"#, "null")]
        {
            assert_eq!(refusal(body).1, format!("{range} `{shown}`"), "{body}");
        }
        assert_eq!(refusal(r#"{}"#).1, "is required");
        assert_eq!(
            refusal(r#"{"like": -1, "a": 1}"#),
            ("a".into(), "is not a member of a post that can be changed; only `like` is".into())
        );
        assert_eq!(refusal(r#"5"#).1, "must be a JSON object such as {\"like\": 5}");
    }
}
