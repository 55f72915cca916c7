//! A request's JSON body, read once for every endpoint that takes one: the media type checked (415
//! naming what was sent), the body limit's 413, and a body that is not JSON a 400. What the JSON must
//! hold is each endpoint's own (its 422s name the member).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use super::query::echo;
use super::request_limits::MAX_BODY_BYTES;

/// The body of `request` as JSON, if its media type (parameters aside) is one of `media_types`.
pub async fn read(request: Request, state: &AppState, media_types: &[&str]) -> Result<Value, ApiError> {
    let media_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if !media_types.contains(&essence.as_str()) {
        return Err(ApiError::UnsupportedMediaType(echo(&media_type)));
    }
    let body = Bytes::from_request(request, state).await.map_err(|rejection| {
        // Past the body limit (a chunked body has no length to refuse it by up front): 413.
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge { length: None, max: MAX_BODY_BYTES }
        } else {
            ApiError::MalformedBody(echo(&rejection.body_text()))
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| ApiError::MalformedBody(e.to_string()))
}
