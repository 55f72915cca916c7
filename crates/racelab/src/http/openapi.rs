//! The OpenAPI 3.1 document (`/openapi.json`), generated from the handlers' own annotations so it
//! cannot drift from the routes, and the Swagger UI at `/docs`, served from files compiled into the
//! binary (utoipa-swagger-ui's `vendored` feature): the page fetches nothing from outside.
//!
//! It must never describe a route or a parameter by hand that the handlers' own annotations do not
//! state.

use std::collections::BTreeMap;

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{OpenApi, ToSchema};

use super::error::{InvalidParam, PROBLEM_JSON, Problem};
use super::limits::Limits;

/// The document's fixed part; the paths are added by the router (see [`super::router`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "racelab",
        description = "Show, measure and prevent lost updates. The `/test-db` endpoints rebuild the FastAPI \
demo this project started from on the racelab experiment engine: each `2th*` endpoint runs `workers` x `increments` increments of \
one strategy on one post and proves the result with the database's own counter. Each parameter states \
its bounds (the maxima of `workers` and `increments` are this server's configuration); a parameter that is \
not documented, or given twice, is refused. Errors are RFC 9457 problem details."
    ),
    tags(
        (name = "test-db", description = "The FastAPI original's endpoints (GET, as it had them), one strategy each"),
        (name = "posts", description = "Posts as a resource: ETag is the version; writes need If-Match (412, 428)"),
        (name = "experiments", description = "Lab, bench and anomalies runs started by a request, watched live (SSE)"),
        (name = "operations", description = "Health, readiness and metrics"),
    ),
    components(schemas(Problem, InvalidParam))
)]
pub struct ApiDoc;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// Where the Swagger UI is served.
pub const DOCS_PATH: &str = "/docs";

/// The document with this server's maxima on every parameter they bound: the parser applies the same
/// [`Limits::apply`] to the same parameters, so the document states exactly what is accepted.
pub fn with_limits(mut doc: utoipa::openapi::OpenApi, limits: &Limits) -> utoipa::openapi::OpenApi {
    let operations = doc.paths.paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
    });
    for parameter in operations.flat_map(|op| op.parameters.iter_mut().flatten()) {
        if let RefOr::T(parameter) = parameter {
            limits.apply(parameter);
        }
    }
    doc
}

/// problem+json answers with these statuses and descriptions, for an endpoint's `responses(..)`: every
/// area documents its error answers through this, so each is a [`Problem`] in the document.
pub fn problems(answers: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(Problem::name()))).build();
    answers
        .iter()
        .map(|(status, description)| {
            let response = ResponseBuilder::new().description(*description).content(PROBLEM_JSON, content.clone());
            (status.to_string(), response.build().into())
        })
        .collect()
}
