//! The largest experiment one request may ask for, and how the published OpenAPI document and the
//! query parser both take their maxima from it, so that a server started with lower limits documents
//! exactly what it accepts. This module must never read a request: it only states and applies bounds.

use serde_json::Value;
use utoipa::Number;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::Parameter;
use utoipa::openapi::schema::Schema;

/// The most workers one request may ask for, unless `serve --max-workers` lowers it. The default pool
/// is sized so that this many fit, plus headroom.
pub const MAX_WORKERS: u32 = 32;
/// The most increments per worker one request may ask for, unless `serve --max-increments` lowers it.
pub const MAX_INCREMENTS: u64 = 1000;
/// Connections the service's pool needs by default: the largest experiment plus headroom for
/// concurrent reads (`/check`, `/ready`) and a second experiment waiting for its connections.
pub const DEFAULT_POOL_SIZE: u32 = MAX_WORKERS + 8;

/// The largest experiment one request may ask for. The parser and the published OpenAPI document both
/// take the maxima of `workers` and `increments` from here (see [`Limits::apply`]), so a server
/// started with lower limits documents exactly what it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_workers: u32,
    pub max_increments: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_workers: MAX_WORKERS, max_increments: MAX_INCREMENTS }
    }
}

impl Limits {
    /// Sets the configured maximum on a parameter it bounds (`workers`, `increments`; others are left
    /// alone), and keeps the parameter's default within it. (They carry no `example`: the default is one.)
    pub fn apply(&self, parameter: &mut Parameter) {
        let max = match parameter.name.as_str() {
            "workers" => u64::from(self.max_workers),
            "increments" => self.max_increments,
            _ => return,
        };
        let within = |value: &mut Option<Value>| {
            if value.as_ref().and_then(Value::as_u64).is_some_and(|v| v > max) {
                *value = Some(Value::from(max));
            }
        };
        if let Some(RefOr::T(Schema::Object(schema))) = &mut parameter.schema {
            schema.maximum = Some(Number::UInt(max as usize));
            within(&mut schema.default);
            within(&mut schema.example);
        }
    }
}
