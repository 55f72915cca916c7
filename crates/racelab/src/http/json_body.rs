//! A request's JSON body, read once for every endpoint that takes one: the media type checked (415
//! naming what was sent), the body limit's 413, a body that is not JSON a 400, and a member given twice
//! a 422 naming it (JSON parsers keep the last or the first as they please: `{"workers": 2, "workers":
//! 32}` must not run either silently, as a repeated query parameter does not). What else the JSON must
//! hold is each endpoint's own (its 422s name the member).

use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::echo::echo;
use super::error::ApiError;
use super::request_limits::MAX_BODY_BYTES;

/// The body of `request` as JSON, if its media type (parameters aside) is one of `media_types`.
pub async fn read<S: Send + Sync>(request: Request, state: &S, media_types: &[&str]) -> Result<Value, ApiError> {
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
    let value: Value = serde_json::from_slice(&body).map_err(|e| ApiError::MalformedBody(e.to_string()))?;
    if value.is_object() {
        let MemberNames(names) = serde_json::from_slice(&body).map_err(|e| ApiError::MalformedBody(e.to_string()))?;
        if let Some(repeated) = names.iter().enumerate().find_map(|(i, n)| names[..i].contains(n).then_some(n)) {
            let times = names.iter().filter(|n| *n == repeated).count();
            return Err(ApiError::InvalidBody {
                name: echo(repeated),
                reason: format!("is given {times} times; give it once"),
            });
        }
    }
    Ok(value)
}

/// A JSON number without a fractional part, as JSON Schema's `integer` reads it (`3.0` is 3), if it
/// fits an `i64`.
pub(super) fn whole_number(value: &Value) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    // 2^63 is the first float past i64::MAX; below it, a whole float converts exactly.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    let float = value.as_f64()?;
    (float.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&float)).then_some(float as i64)
}

/// The member names of a JSON object, in order and with their repeats (which `Value` forgets).
struct MemberNames(Vec<String>);

impl<'de> Deserialize<'de> for MemberNames {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> Visitor<'de> for Names {
            type Value = MemberNames;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MemberNames, A::Error> {
                let mut names = Vec::new();
                while let Some((name, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                    names.push(name);
                }
                Ok(MemberNames(names))
            }
        }
        deserializer.deserialize_map(Names)
    }
}
