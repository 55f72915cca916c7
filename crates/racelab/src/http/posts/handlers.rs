//! The handlers of `/posts`: create, read, change and delete a post, each write conditional on the
//! version its `If-Match` names. They must never write without that condition.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::body::{PatchPost, PostBody, etag, insert_etag, with_etag};
use super::conditions::{Condition, precondition, required_if_match};
use super::errors::{DeleteErrors, PatchErrors, ReadErrors, WriteErrors};
use crate::http::error::ApiError;
use crate::http::json_body::ApiJson;
use crate::http::post_key::PostKey;
use crate::http::state::AppState;

/// Creates a post with `like = 0`.
#[utoipa::path(post, path = "/posts", tag = "posts",
    responses(
        (status = 201, description = "Created", body = PostBody, headers(
            ("Location" = String, description = "The new post's URL"),
            ("ETag" = String, description = "The post's version, as a strong entity-tag"),
        )),
        (status = 503, description = "The database cannot be reached (with Retry-After)",
            body = crate::http::error::Problem, content_type = "application/problem+json"),
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
        ("If-Match" = String, Header, min_length = 1,
            // `*`, or at least one entity-tag, as `conditions` reads them: anything else is a 400.
            pattern = r#"^(?:\*|[ \t,]*(?:W/)?"[!#-~]*"(?:[ \t]*,[ \t,]*(?:W/)?"[!#-~]*")*[ \t]*(?:,[ \t,]*)?)$"#,
            description = "The ETag of the version this change replaces (or `*`); one naming no entity-tag is a 400"),
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
        ("If-Match" = String, Header, min_length = 1,
            // `*`, or at least one entity-tag, as `conditions` reads them: anything else is a 400.
            pattern = r#"^(?:\*|[ \t,]*(?:W/)?"[!#-~]*"(?:[ \t]*,[ \t,]*(?:W/)?"[!#-~]*")*[ \t]*(?:,[ \t,]*)?)$"#,
            description = "The ETag of the version this deletes (or `*`); one naming no entity-tag is a 400"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        DeleteErrors,
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
