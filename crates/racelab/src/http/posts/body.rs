//! The post's JSON: the body a post is shown as (with its `ETag`) and the body of `PATCH`, read with
//! the words every refusal of `like` uses. It must never accept a `like` the document refuses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use racelab_core::db::PostRow;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::http::echo::echo;
use crate::http::json_body::{JsonBody, whole_number};

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
pub(super) fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// `body` as JSON with the post's `ETag`.
pub(super) fn with_etag(status: StatusCode, row: PostRow) -> Response {
    let tag = etag(row.version);
    let mut response = (status, Json(PostBody::from(row))).into_response();
    insert_etag(&mut response, &tag);
    response
}

pub(super) fn insert_etag(response: &mut Response, tag: &str) {
    if let Ok(value) = HeaderValue::from_str(tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::error::ApiError;
    use crate::http::json_body;

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
