//! The OpenAPI 3.1 document (`/openapi.json`), generated from the handlers' own annotations so it
//! cannot drift from the routes, and the Swagger UI at `/docs`, served from files compiled into the
//! binary (utoipa-swagger-ui's `vendored` feature): the page fetches nothing from outside.

use utoipa::OpenApi;

use super::error::{InvalidParam, Problem};

/// The document's fixed part; the paths are added by the router (see [`super::router`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "racelab",
        description = "Show, measure and prevent lost updates. The `/test-db` endpoints rebuild the seed's \
FastAPI demo on the racelab experiment engine: each `2th*` endpoint runs `workers` x `increments` increments of \
one strategy on one post and proves the result with the database's own counter. Bounds: workers 1-32, \
increments 1-1000, post 1-2147483647. Errors are RFC 9457 problem details."
    ),
    tags(
        (name = "seed", description = "The seed's endpoints (GET, as the seed had them), one strategy each"),
        (name = "operations", description = "Health, readiness and metrics"),
    ),
    components(schemas(Problem, InvalidParam))
)]
pub struct ApiDoc;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// Where the Swagger UI is served.
pub const DOCS_PATH: &str = "/docs";
