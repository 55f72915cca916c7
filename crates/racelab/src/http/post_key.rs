//! The `{pk}` of a post's path (`/posts/{pk}`, `/posts/{pk}/likes`): a positive integer in plain
//! decimal, or a 400 problem naming `pk`. It must never let a second spelling of a number through
//! (`+2`, `02`), as the query parameters do not.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::echo::echo;
use super::error::ApiError;
use super::state::AppState;

/// The `{pk}` of the path: a positive integer, or a 400 problem naming `pk`.
#[derive(Debug, Clone, Copy)]
pub struct PostKey(pub i64);

impl FromRequestParts<AppState> for PostKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let invalid = |reason: String| ApiError::InvalidPart { part: "path parameter", name: "pk".into(), reason };
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| invalid(format!("cannot be read: {}", echo(&rejection.body_text()))))?;
        // Plain decimal, as the query parameters: one spelling per number.
        let canonical = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) && !raw.starts_with('0');
        match raw.parse::<i64>() {
            Ok(pk) if canonical && pk >= 1 => Ok(PostKey(pk)),
            _ => Err(invalid(format!("must be an integer between 1 and {}, got `{}`", i64::MAX, echo(&raw)))),
        }
    }
}
