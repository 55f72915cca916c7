//! The published schema of `POST /experiments`'s body: the one derived from
//! [`ExperimentBody`](crate::http::experiments::ExperimentBody), given this server's bounds by
//! [`Bounds::apply`] (the strategies its database supports, the maxima of `workers` and `increments`), as
//! `Limits::apply` does for query parameters, so that a body the document allows is a body the server
//! runs.
//!
//! It must never describe a member the body type does not declare, nor word a member's description:
//! both are the derived schema's.

use racelab_core::{Experiment, Isolation, Strategy, Workload};
use serde_json::Value;
use utoipa::Number;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ArrayBuilder, ArrayItems, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};

use super::request::{Bounds, MAX_SWEEP};

/// The members a spec run refuses (the spec says what runs), as `ExperimentBody::validate` names them.
const SPEC_TAKES_NONE_OF: [&str; 14] = [
    "strategies",
    "workers",
    "increments",
    "force_race",
    "lock_mode",
    "post",
    "workload",
    "isolation",
    "stock",
    "accounts",
    "doctors",
    "jobs",
    "rooms",
    "slots",
];

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
            // Every name of every workload; which go with which workload is `conditions`'s.
            let mut names = self.counter_strategies();
            for workload in Workload::ALL.into_iter().filter(|w| *w != Workload::Counter) {
                names.extend(workload.strategies().into_iter().filter(|n| !names.contains(n)).collect::<Vec<_>>());
            }
            name.enum_values = Some(names.into_iter().map(Value::from).collect());
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

impl Bounds {
    /// The counter's strategy names this server's database supports.
    fn counter_strategies(&self) -> Vec<&'static str> {
        Strategy::names()
            .iter()
            .copied()
            .filter(|name| name.parse::<Strategy>().is_ok_and(|s| s.supported_on(self.backend)))
            .collect()
    }

    /// The body's schema with what ties its members together: the body `apply` gave (`body`), and one
    /// of these forms (`anyOf`, each workload's excluding the others by its name, the spec's by its
    /// kind): the counter's (a lab, bench or anomalies; `workload` absent, `null` or `counter`; its
    /// strategies; no isolation or sizes), the counter's at a level (the same in a lab, `isolation` a
    /// level, no `post`), a workload's (a lab; its strategies; no `lock_mode` or `post`, which are the
    /// counter's), or a spec's (`spec` required; none of the others' members).
    /// No form but the spec's takes `spec`, `permutation` or `step_timeout`.
    pub fn with_conditions(&self, body: Object) -> Schema {
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let names = |names: Vec<&'static str>| {
            let name = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names));
            ArrayBuilder::new().schema_type(SchemaType::from_iter([Type::Array, Type::Null])).items(name)
        };
        let kinds = |kinds: &[&str]| ObjectBuilder::new().schema_type(Type::String).enum_values(Some(kinds.to_vec()));
        // The counter's two forms share all but the level: without one, any of its kinds; at one, a lab
        // only, on a fresh post (no `post`).
        let counter = |kinds: ObjectBuilder, isolation: ObjectBuilder| {
            let mut form = ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("kind", kinds)
                .property(
                    "workload",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                        .enum_values(Some([Value::from(Workload::Counter.name()), Value::Null])),
                )
                .property("strategies", names(self.counter_strategies()))
                .property("isolation", isolation);
            for member in
                ["stock", "accounts", "doctors", "jobs", "rooms", "slots", "spec", "permutation", "step_timeout"]
            {
                form = form.property(member, null());
            }
            form
        };
        let level =
            ObjectBuilder::new().schema_type(Type::String).enum_values(Some(Isolation::ALL.map(Isolation::name)));
        let at_level = counter(kinds(&["lab"]), level).required("isolation").property("post", null());
        let mut forms = AnyOfBuilder::new().item(counter(kinds(&["lab", "bench", "anomalies"]), null())).item(at_level);
        for workload in Workload::ALL.into_iter().filter(|w| *w != Workload::Counter) {
            let form = ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("kind", kinds(&["lab"]))
                .property(
                    "workload",
                    ObjectBuilder::new().schema_type(Type::String).enum_values(Some([workload.name()])),
                )
                .required("workload")
                .property("strategies", names(workload.strategies()))
                .property("lock_mode", null())
                .property("post", null())
                .property("spec", null())
                .property("permutation", null())
                .property("step_timeout", null());
            forms = forms.item(form);
        }
        let mut spec = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("kind", kinds(&["spec"]))
            .property("spec", ObjectBuilder::new().schema_type(Type::String))
            .required("kind")
            .required("spec");
        for member in SPEC_TAKES_NONE_OF {
            spec = spec.property(member, null());
        }
        forms = forms.item(spec);
        AllOfBuilder::new().item(body).item(forms).into()
    }
}
