//! The error answers of `/posts`, documented once for the OpenAPI document. It must never describe an
//! answer the handlers do not give.

use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::RefOr;
use utoipa::openapi::response::Response as ResponseDoc;

use crate::http::openapi::problems;

const INVALID_PK: (u16, &str) = (
    400,
    "`pk` is not a positive integer, or a conditional header is not `*` or a list of entity-tags (`If-Match` \
     naming none, empty, included)",
);
const NOT_FOUND: (u16, &str) = (404, "No post has this key");
const CONFLICT: (u16, &str) = (409, "The database refused the write for a conflict with another transaction");
/// A change bumps `version`, which can be at its maximum; a delete bumps nothing.
const CHANGE_CONFLICT: (u16, &str) = (
    409,
    "The database refused the write for a conflict with another transaction, or the post's `version` is at its \
     maximum, 9223372036854775807 (`counter-at-maximum`)",
);
const UNAVAILABLE: (u16, &str) = (503, "The database cannot be reached (with Retry-After)");

/// The errors of `GET`.
pub(super) struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        problems(&[INVALID_PK, NOT_FOUND, UNAVAILABLE])
    }
}

const PRECONDITION_FAILED: (u16, &str) =
    (412, "`If-Match` does not name the current version; the answer's `ETag` does");
const PRECONDITION_REQUIRED: (u16, &str) = (428, "`If-Match` is missing: a write must name the version it replaces");

/// The errors of a conditional change (`PATCH`).
pub(super) struct WriteErrors;

impl IntoResponses for WriteErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        problems(&[INVALID_PK, NOT_FOUND, CHANGE_CONFLICT, PRECONDITION_FAILED, PRECONDITION_REQUIRED, UNAVAILABLE])
    }
}

/// The errors of a conditional delete.
pub(super) struct DeleteErrors;

impl IntoResponses for DeleteErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        problems(&[INVALID_PK, NOT_FOUND, CONFLICT, PRECONDITION_FAILED, PRECONDITION_REQUIRED, UNAVAILABLE])
    }
}

/// The errors of `PATCH` on top of a write's.
pub(super) struct PatchErrors;

impl IntoResponses for PatchErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        problems(&[
            (415, "The body is not `application/json` (or `application/merge-patch+json`)"),
            (422, "A body member is missing, of the wrong type, out of range or unknown (named in `invalid_params`)"),
        ])
    }
}
