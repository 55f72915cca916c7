//! The error answers of the `/test-db/*` endpoints as the OpenAPI document lists them, written once
//! for the endpoints that share them. Documentation only: the answers themselves are
//! [`ApiError`](crate::http::error::ApiError)'s.
//!
//! Nothing here may decide a status.

use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::RefOr;
use utoipa::openapi::response::Response;

use crate::http::openapi::problems;

const INVALID_PARAMETER: (u16, &str) =
    (400, "An unknown, repeated or invalid query parameter (named in `detail` and `invalid_params`)");
const UNAVAILABLE: (u16, &str) = (
    503,
    "The database cannot be reached or went away, or the request timeout passed (with Retry-After); an experiment \
     the database left unfinished carries `experiment`, what was done",
);

/// The errors of an endpoint that reads its parameters and the database, and takes no lock.
pub struct QueryErrors;

impl IntoResponses for QueryErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[INVALID_PARAMETER, UNAVAILABLE])
    }
}

/// The errors of an endpoint that works on one post.
pub struct PostErrors;

impl IntoResponses for PostErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[
            INVALID_PARAMETER,
            (409, "The row stayed locked by another transaction past the lock timeout, or another conflict kind"),
            UNAVAILABLE,
        ])
    }
}

/// The errors of a `2th*` endpoint.
pub struct ExperimentErrors;

impl IntoResponses for ExperimentErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[
            INVALID_PARAMETER,
            (
                409,
                "Every increment gave up on a row lock another transaction held (`lock_not_available`, \
                 `lock_timeout`, `row_skipped`); `experiment` says what was done",
            ),
            (422, "More workers than the server's pool allows (the maximum is named in `detail`)"),
            UNAVAILABLE,
        ])
    }
}
