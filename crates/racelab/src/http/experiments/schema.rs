//! The published schema of `POST /experiments`'s body: the one derived from
//! [`ExperimentBody`](crate::http::experiments::ExperimentBody), given this server's bounds by
//! [`Bounds::apply`] (the strategies its database supports, the maxima of `workers` and `increments`), as
//! `Limits::apply` does for query parameters, so that a body the document allows is a body the server
//! runs.
//!
//! It must never describe a member the body type does not declare, nor word a member's description:
//! both are the derived schema's.

use racelab_core::{Experiment, Strategy};
use serde_json::Value;
use utoipa::Number;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ArrayItems, Object, ObjectBuilder, OneOfBuilder, Schema, Type};

use super::request::{Bounds, MAX_SWEEP};

impl Bounds {
    /// Sets this server's bounds on the body's derived schema: the names `strategies` may hold, the
    /// maximum of `increments`, and the forms of `workers` (one count or a list of them, each within
    /// the server's limit, or `null`), keeping each member's description.
    pub fn apply(&self, body: &mut Object) {
        let members = &mut body.properties;
        if let Some(RefOr::T(Schema::Array(strategies))) = members.get_mut("strategies")
            && let ArrayItems::RefOrSchema(name) = &mut strategies.items
            && let RefOr::T(Schema::Object(name)) = name.as_mut()
        {
            let supported = Strategy::names()
                .iter()
                .filter(|name| name.parse::<Strategy>().is_ok_and(|s| s.supported_on(self.backend)));
            name.enum_values = Some(supported.map(|name| Value::from(*name)).collect());
        }
        if let Some(RefOr::T(Schema::Object(increments))) = members.get_mut("increments") {
            let max = self.max_increments.min(Experiment::MAX_INCREMENTS);
            increments.maximum = Some(Number::UInt(max as usize));
        }
        if let Some(workers) = members.get_mut("workers") {
            let description = match workers {
                RefOr::T(Schema::Object(derived)) => derived.description.take(),
                _ => None,
            };
            let count =
                || ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(self.max_workers));
            let list = ArrayBuilder::new().min_items(Some(1)).max_items(Some(MAX_SWEEP)).items(count());
            let forms = OneOfBuilder::new().item(count()).item(list).item(ObjectBuilder::new().schema_type(Type::Null));
            *workers = forms.description(description).into();
        }
    }
}
