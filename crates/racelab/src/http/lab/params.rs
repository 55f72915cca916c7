//! The query parameters of the `/test-db/*` endpoints: one struct per endpoint, which documents
//! (`IntoParams`) and parses (`Deserialize`, checked against its own documentation by
//! [`ApiQuery`](crate::http::query::ApiQuery)) the query. Nothing else may describe these parameters:
//! the document and the parser must read the same struct.

use racelab_core::LockMode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// Declares the parameters of an endpoint that runs an experiment: its own fields, then `workers`,
/// `increments`, `post` and `force_race`, which every such endpoint takes.
macro_rules! experiment_params {
    ($(#[$doc:meta])* $name:ident { $($(#[$field_doc:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            $($(#[$field_doc])* pub $field: $ty,)*
            /// Concurrent workers, each on its own database connection.
            #[param(required = false, minimum = 1, default = 2)]
            pub workers: usize,
            /// Increments each worker makes.
            #[param(required = false, minimum = 1, default = 25)]
            pub increments: u64,
            /// The post to work on, created with `like = 0` if missing. Requests on the same post run one
            /// after the other; on different posts, side by side.
            #[param(required = false, minimum = 1, maximum = 2147483647, default = 1, example = 1)]
            pub post: i64,
            /// Make every worker read before any of them writes, on its first increment: the conflict
            /// forced, deterministically (strategies that read without a lock).
            #[param(required = false, default = false)]
            pub force_race: bool,
        }

        impl $name {
            /// The experiment asked for.
            pub fn run(&self) -> Run {
                Run { workers: self.workers, increments: self.increments, post: self.post, force_race: self.force_race }
            }
        }
    };
}

/// The experiment one request asks for.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub workers: usize,
    pub increments: u64,
    pub post: i64,
    pub force_race: bool,
}

experiment_params!(
    /// Parameters of the `2th*` endpoints without options of their own.
    RunParams {}
);

experiment_params!(
    /// Parameters of `/2th-plock`.
    PlockParams {
        /// What `SELECT ... FOR UPDATE` does when the row is locked: `wait` (up to the lock timeout),
        /// `nowait` (give up at once: `lock_not_available`) or `skip-locked` (give up at once:
        /// `row_skipped`).
        #[param(required = false, inline, example = "wait")]
        mode: Mode,
    }
);

experiment_params!(
    /// Parameters of `/2th-olock-sqlalchemy-versioning`.
    VersioningParams {
        /// Retry a save that found a stale version by re-running the whole unit of work. `false` does
        /// what the FastAPI original did: each conflict silently drops one increment (`experiment.dropped` counts
        /// them).
        #[param(required = false, default = true)]
        retry: bool,
    }
);

/// `/2th-plock`'s `mode`: a [`LockMode`] by the name [`LockMode::as_str`] gives it. Its schema is a
/// plain string enum of [`LockMode::ALL`], so a new mode is documented and accepted at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mode(pub LockMode);

impl PartialSchema for Mode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(LockMode::ALL.map(LockMode::as_str)))
            .default(Some(Value::from(LockMode::default().as_str())))
            .into()
    }
}

impl ToSchema for Mode {}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map(Mode).map_err(serde::de::Error::custom)
    }
}

/// Parameters of `/inc`: one session, sequential increments.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncParams {
    /// Increments, one after the other on one connection.
    #[param(required = false, minimum = 1, default = 25)]
    pub increments: u64,
    /// The post to work on, created with `like = 0` if missing.
    #[param(required = false, minimum = 1, maximum = 2147483647, default = 1, example = 1)]
    pub post: i64,
}

/// Parameters of the endpoints that work on one post and nothing else.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PostParams {
    /// The post to work on, created with `like = 0` if missing.
    #[param(required = false, minimum = 1, maximum = 2147483647, default = 1, example = 1)]
    pub post: i64,
}

/// For endpoints without parameters: any parameter is refused.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoParams {}
