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

mod body;
mod conditions;
mod errors;
mod handlers;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::handlers::{__path_create_post, __path_delete_post, __path_get_post, __path_patch_post};
use self::handlers::{create_post, delete_post, get_post, patch_post};
use super::state::AppState;

/// The routes of this module, documented.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_post)).routes(routes!(get_post, patch_post, delete_post))
}
