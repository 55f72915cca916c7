//! The body of `POST /experiments` as a client sends it, [`ExperimentBody`]: read by
//! `ApiJson` (`http/json_body.rs`: 415, 413, 400, and a 422 naming the member that is
//! unknown, repeated, missing or of the wrong type), then checked against this server's database and
//! limits by [`ExperimentBody::validate`] (a 422 naming the member out of range), which gives the
//! normalized [`ExperimentRequest`]. The published schema is the one derived from this type, with the
//! server's bounds set on it by `Bounds::apply` (`schema.rs`).
//!
//! It must never accept a body the published document refuses, nor refuse one it allows.

use racelab_core::spec;
use racelab_core::workload::Sizes;
use racelab_core::{Experiment, Isolation, LockMode, Strategy, Workload};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::{PartialSchema, ToSchema};

use super::request::{Bounds, ExperimentRequest, Kind, MAX_SWEEP, Pick, Plan, SpecPlan, Workers, WorkloadPlan};
use crate::http::echo::echo;
use crate::http::error::ApiError;
use crate::http::json_body::{JsonBody, declared_members, whole_number};

/// An experiment run to start. Every member but `kind` may be absent or `null`, its default; the
/// members an `anomalies` run does not use are checked all the same (the document has one schema for
/// the body, whatever its kind). A `spec` run takes `spec` (required), `permutation` and
/// `step_timeout` and none of the others, which take none of these three.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    description = "An experiment run. Members other than `kind` are optional (`null` is the default) and, \
        checked but not used, by `anomalies`. A `spec` run takes `spec` (required), `permutation` and \
        `step_timeout`, and none of the other members.",
    example = json!({"kind": "lab", "strategies": ["naive", "atomic"], "workers": 2, "increments": 10,
        "force_race": true, "lock_mode": "wait"})
)]
pub struct ExperimentBody {
    // Described in `kind_schema`: derived inline, `Kind`'s schema would stand in an `allOf` beside the
    // member's description, and `lock_mode`'s enum in a `oneOf` beside `null`.
    #[serde(deserialize_with = "kind")]
    #[schema(schema_with = kind_schema)]
    pub kind: Kind,
    /// Default: every strategy the database supports (the counter's), or every strategy of `workload`
    // The names the database supports are this server's, and each workload's its own: `Bounds::apply`
    // lists them all, and states which go with which workload.
    #[serde(default, deserialize_with = "strategies")]
    #[schema(value_type = Option<Vec<String>>, min_items = 1)]
    pub strategies: Option<Vec<String>>,
    /// One count (a lab's default: 2) or a list (a bench's default: [1, 2, 4, 8])
    // Each count's maximum is this server's: `Bounds::apply` states the counts.
    #[schema(value_type = Option<Value>)]
    pub workers: Option<Counts>,
    /// Per worker; default 10 for a lab, 100 for a bench
    // `isize` is documented as a bare `integer` (no `format`, no `minimum: 0`), as JSON Schema reads one.
    #[schema(value_type = Option<isize>, minimum = 1)]
    pub increments: Option<Sent>,
    /// Every worker reads before any writes, on its first increment
    #[serde(default, deserialize_with = "force_race")]
    pub force_race: Option<bool>,
    #[serde(default, deserialize_with = "lock_mode")]
    #[schema(schema_with = lock_mode_schema)]
    pub lock_mode: Option<LockMode>,
    /// The post to work on (created if missing); default: a fresh post per experiment
    #[serde(default, deserialize_with = "post")]
    #[schema(value_type = Option<isize>, minimum = 1, maximum = 2147483647)]
    pub post: Option<i64>,
    #[serde(default, deserialize_with = "workload")]
    #[schema(schema_with = workload_schema)]
    pub workload: Option<Workload>,
    #[serde(default, deserialize_with = "isolation")]
    #[schema(schema_with = isolation_schema)]
    pub isolation: Option<Isolation>,
    /// `stock`: units in stock at the start; default: half the demand (workers x increments / 2)
    #[serde(default, deserialize_with = "stock")]
    #[schema(value_type = Option<isize>, minimum = 0, maximum = 2147483647)]
    pub stock: Option<i64>,
    /// `transfer`: accounts the transfers move money between; default 8
    #[serde(default, deserialize_with = "accounts")]
    #[schema(value_type = Option<isize>, minimum = 2, maximum = 10000)]
    pub accounts: Option<usize>,
    /// `oncall`: doctors on call per shift at the start; default 4
    #[serde(default, deserialize_with = "doctors")]
    #[schema(value_type = Option<isize>, minimum = 1, maximum = 1000)]
    pub doctors: Option<usize>,
    /// `queue`: jobs in the queue at the start; default: half the demand (workers x increments / 2)
    #[serde(default, deserialize_with = "jobs")]
    #[schema(value_type = Option<isize>, minimum = 0, maximum = 100000)]
    pub jobs: Option<usize>,
    /// `booking`: rooms to book; default 4
    #[serde(default, deserialize_with = "rooms")]
    #[schema(value_type = Option<isize>, minimum = 1, maximum = 10000)]
    pub rooms: Option<usize>,
    /// `booking`: time slots per room; default 64
    #[serde(default, deserialize_with = "slots")]
    #[schema(value_type = Option<isize>, minimum = 1, maximum = 1024)]
    pub slots: Option<usize>,
    /// `spec` (required for it): the spec file's text, in PostgreSQL's isolation-tester format
    /// (`GET /specs` lists the repository's)
    // At most 12 KiB: with JSON's escapes it stays within the 16 KiB a body may be (request_limits.rs).
    #[serde(default, deserialize_with = "spec_text")]
    #[schema(max_length = 12288)]
    pub spec: Option<String>,
    /// `spec`: the one permutation to run (step names separated by spaces, blocker annotations allowed);
    /// default: the spec's own permutation lines, else every interleaving
    #[serde(default, deserialize_with = "permutation")]
    #[schema(max_length = 1024)]
    pub permutation: Option<String>,
    /// `spec`: seconds a step may wait before it is cancelled (twice as long ends the run); default 10
    #[serde(default, deserialize_with = "step_timeout")]
    #[schema(value_type = Option<isize>, minimum = 1, maximum = 60)]
    pub step_timeout: Option<u64>,
}

/// The most characters of a spec's text.
pub const MAX_SPEC_CHARS: usize = 12 * 1024;
/// The most characters of a permutation line.
pub const MAX_PERMUTATION_CHARS: usize = 1024;
/// The longest step timeout a spec run may ask for, in seconds: a server's run must not hold its
/// database for isolationtester's 300 s per step.
pub const MAX_STEP_TIMEOUT: u64 = 60;
/// A spec run's step timeout when the body names none, in seconds.
pub const DEFAULT_STEP_TIMEOUT: u64 = 10;
/// The most sessions a spec run may open: each is a connection to the server's database, beside its pool.
pub const MAX_SPEC_SESSIONS: usize = 8;
/// The most permutations one spec run runs (each one's setups, steps and teardowns).
pub const MAX_SPEC_PERMUTATIONS: u128 = 1000;

/// The most units a `stock` run may start with (the document states it).
pub const MAX_STOCK: i64 = i32::MAX as i64;

impl JsonBody for ExperimentBody {
    const MEDIA_TYPES: &'static [&'static str] = &["application/json"];
    const NOT_AN_OBJECT: &'static str = "must be a JSON object such as {\"kind\": \"lab\"}";

    fn unknown_member() -> String {
        format!("is not a member of an experiment; the members are {}", declared_members::<Self>().join(", "))
    }

    // Only `kind` is required.
    fn missing(_member: &str) -> String {
        "is required: lab, bench, anomalies or spec".to_owned()
    }
}

/// A number as it was sent, for a member whose range is this server's: its value if it is a whole
/// number, and what was sent, for the refusal (which states the range, so `validate` words it).
#[derive(Debug)]
pub struct Sent {
    whole: Option<i64>,
    text: String,
}

impl Sent {
    fn of(value: &Value) -> Self {
        Self { whole: whole_number(value), text: got(value) }
    }

    /// The number, if it is a whole number from 1 to `max`.
    fn up_to(&self, max: i64) -> Option<i64> {
        self.whole.filter(|n| (1..=max).contains(n))
    }
}

impl<'de> Deserialize<'de> for Sent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(|value| Self::of(&value))
    }
}

/// `workers` as sent: one count, or a list of them.
#[derive(Debug)]
pub enum Counts {
    One(Sent),
    List(Vec<Sent>),
}

impl<'de> Deserialize<'de> for Counts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::Array(items) => Counts::List(items.iter().map(Sent::of).collect()),
            one => Counts::One(Sent::of(&one)),
        })
    }
}

/// A member's JSON text, cut for an error message.
fn got(value: &Value) -> String {
    echo(&value.to_string())
}

// Each member's reader below takes what was sent as JSON and refuses it in the member's own words,
// quoting it (cut by `echo`): the extractor names the member.

fn kind<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Kind, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Kind::deserialize(&value)
        .map_err(|_| D::Error::custom(format!("must be lab, bench, anomalies or spec, got `{}`", got(&value))))
}

/// `kind`'s schema: [`Kind`]'s own (its names), described as the member.
fn kind_schema() -> RefOr<Schema> {
    let mut schema = Kind::schema();
    if let RefOr::T(Schema::Object(kind)) = &mut schema {
        kind.description = Some(
            "lab: each strategy once (traced when at most 4 workers x 10 increments); bench: each strategy at \
            each worker count; anomalies: Hermitage's isolation tests; spec: an isolation-tester spec's \
            permutations (`spec`, `permutation`, `step_timeout`)"
                .to_owned(),
        );
    }
    schema
}

fn strategies<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    let names = value.as_array().filter(|names| !names.is_empty()).ok_or_else(|| {
        D::Error::custom(format!("must be a non-empty list of strategy names, got `{}`", got(&value)))
    })?;
    let strategy = |name: &Value| {
        name.as_str()
            .map(str::to_owned)
            .ok_or_else(|| D::Error::custom(format!("must hold strategy names (strings), got `{}`", got(name))))
    };
    names.iter().map(strategy).collect::<Result<_, _>>().map(Some)
}

fn workload<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Workload>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    // The names exactly as the document lists them.
    let named = value.as_str().and_then(|name| Workload::ALL.into_iter().find(|w| w.name() == name));
    named
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("must be one of {}, got `{}`", workload_names(), got(&value))))
}

fn workload_names() -> String {
    Workload::ALL.map(Workload::name).join(", ")
}

/// `workload`'s schema: the names of [`Workload::ALL`], or `null`.
fn workload_schema() -> Object {
    let names = Workload::ALL.into_iter().map(|w| Value::from(w.name())).chain([Value::Null]);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(names))
        .description(Some(
            "The race to run (a lab only for all but counter); default counter. `GET /workloads` gives each one's \
            invariant and strategies",
        ))
        .build()
}

fn isolation<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Isolation>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    let names = Isolation::ALL.map(Isolation::name).join(", ");
    let named = value.as_str().and_then(|name| Isolation::ALL.into_iter().find(|level| level.name() == name));
    named.map(Some).ok_or_else(|| D::Error::custom(format!("must be one of {names}, got `{}`", got(&value))))
}

/// `isolation`'s schema: the names of [`Isolation::ALL`], or `null`.
fn isolation_schema() -> Object {
    let names = Isolation::ALL.into_iter().map(|level| Value::from(level.name())).chain([Value::Null]);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(names))
        .description(Some(
            "Every transaction at this level (the serializable strategy's always at SERIALIZABLE); default: the \
            database's own. With the counter (a lab only), its strategies run through the workloads' runner, their \
            results carrying the workload's keys (workload, isolation, invariant), on a fresh post each",
        ))
        .build()
}

fn stock<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    match whole_number(&value).filter(|units| (0..=MAX_STOCK).contains(units)) {
        Some(units) => Ok(Some(units)),
        None => Err(D::Error::custom(format!("must be an integer between 0 and {MAX_STOCK}, got `{}`", got(&value)))),
    }
}

fn accounts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    size_between(deserializer, 2, Sizes::MAX_ACCOUNTS)
}

fn doctors<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    size_between(deserializer, 1, Sizes::MAX_DOCTORS)
}

fn jobs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    size_between(deserializer, 0, Sizes::MAX_JOBS)
}

fn rooms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    size_between(deserializer, 1, Sizes::MAX_ROOMS)
}

fn slots<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    size_between(deserializer, 1, Sizes::MAX_SLOTS)
}

/// A size member: `null`, or a whole number from `min` to `max`.
fn size_between<'de, D: Deserializer<'de>>(deserializer: D, min: usize, max: usize) -> Result<Option<usize>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    match whole_number(&value).filter(|n| (min as i64..=max as i64).contains(n)) {
        Some(n) => Ok(Some(n as usize)),
        None => Err(D::Error::custom(format!("must be an integer between {min} and {max}, got `{}`", got(&value)))),
    }
}

fn force_race<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::Bool(force) => Ok(Some(force)),
        other => Err(D::Error::custom(format!("must be true or false, got `{}`", got(&other)))),
    }
}

fn lock_mode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<LockMode>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::String(name) => name
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("must be wait, nowait or skip-locked, got `{}`", echo(&name)))),
        other => {
            Err(D::Error::custom(format!("must be a string (wait, nowait or skip-locked), got `{}`", got(&other))))
        }
    }
}

/// `lock_mode`'s schema: the names of [`LockMode`], or `null`.
fn lock_mode_schema() -> Object {
    let names = LockMode::ALL.into_iter().map(|mode| Value::from(mode.as_str())).chain([Value::Null]);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(names))
        .description(Some("What `pessimistic` does at a locked row; default wait"))
        .build()
}

fn post<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    let max = i64::from(i32::MAX);
    match whole_number(&value).filter(|pk| (1..=max).contains(pk)) {
        Some(pk) => Ok(Some(pk)),
        None => Err(D::Error::custom(format!("must be an integer between 1 and {max}, got `{}`", got(&value)))),
    }
}

fn spec_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    text_up_to(deserializer, MAX_SPEC_CHARS, "a spec file's text")
}

fn permutation<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    text_up_to(deserializer, MAX_PERMUTATION_CHARS, "a permutation (step names separated by spaces)")
}

/// A text member: `null`, or a string of at most `max` characters (as JSON Schema's `maxLength` counts).
fn text_up_to<'de, D: Deserializer<'de>>(deserializer: D, max: usize, what: &str) -> Result<Option<String>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::String(text) if text.chars().count() <= max => Ok(Some(text)),
        Value::String(text) => {
            Err(D::Error::custom(format!("must be at most {max} characters, got {}", text.chars().count())))
        }
        other => Err(D::Error::custom(format!("must be {what} (a string), got `{}`", got(&other)))),
    }
}

fn step_timeout<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    match whole_number(&value).filter(|n| (1..=MAX_STEP_TIMEOUT as i64).contains(n)) {
        Some(seconds) => Ok(Some(seconds as u64)),
        None => Err(D::Error::custom(format!(
            "must be a whole number of seconds between 1 and {MAX_STEP_TIMEOUT}, got `{}`",
            got(&value)
        ))),
    }
}

fn invalid(name: &str, reason: String) -> ApiError {
    ApiError::InvalidBody { name: name.to_owned(), reason }
}

impl ExperimentBody {
    /// The run this body asks for on this server: what the member types cannot know checked against
    /// `bounds` (the strategies the database supports, the maxima of `workers` and `increments`), in
    /// the order of the members, defaults filled in and names made canonical.
    pub fn validate(self, bounds: &Bounds) -> Result<ExperimentRequest, ApiError> {
        let kind = self.kind;
        if kind == Kind::Spec {
            return self.spec_run();
        }
        let given = [
            ("spec", self.spec.is_some()),
            ("permutation", self.permutation.is_some()),
            ("step_timeout", self.step_timeout.is_some()),
        ];
        if let Some((member, _)) = given.iter().find(|(_, given)| *given) {
            return Err(invalid(member, "applies to a spec run (kind: spec)".to_owned()));
        }
        let lock_mode = self.lock_mode.unwrap_or(LockMode::Wait);
        let workload = self.workload.unwrap_or(Workload::Counter);
        // At a level the counter is one workload of the generic runner, as `racelab lab --workload
        // counter --isolation` runs it: its strategies go by their names, as every workload's do.
        let counter_at_level = workload == Workload::Counter && self.isolation.is_some();
        let strategies = match workload {
            Workload::Counter => {
                let names = self.strategies.map(|names| names.iter().map(|n| n.parse::<Strategy>()).collect());
                let names = names.transpose().map_err(|err| invalid("strategies", err.to_string()))?;
                let supported = supported(names, bounds, lock_mode)?.into_iter();
                if counter_at_level {
                    supported.map(|s| Pick::Workload(s.name())).collect()
                } else {
                    supported.map(Pick::Counter).collect()
                }
            }
            other => workload_strategies(other, self.strategies)?,
        };
        let workers = match (kind, self.workers) {
            (Kind::Bench, sent) | (_, sent @ Some(Counts::List(_))) => Workers::Sweep(sweep(sent, bounds)?),
            (_, Some(Counts::One(sent))) => Workers::One(count(&sent, bounds)?),
            (_, None) => Workers::One(2),
        };
        let max_increments = bounds.max_increments.min(Experiment::MAX_INCREMENTS);
        let increments = match self.increments {
            None if kind == Kind::Bench => 100.min(max_increments),
            None => 10.min(max_increments),
            Some(sent) => sent.up_to(max_increments as i64).map(|n| n as u64).ok_or_else(|| {
                invalid("increments", format!("must be an integer between 1 and {max_increments}, got `{}`", sent.text))
            })?,
        };
        let force_race = self.force_race.unwrap_or(false);
        let workload = match workload {
            Workload::Counter => {
                let given = [
                    ("stock", self.stock.is_some()),
                    ("accounts", self.accounts.is_some()),
                    ("doctors", self.doctors.is_some()),
                    ("jobs", self.jobs.is_some()),
                    ("rooms", self.rooms.is_some()),
                    ("slots", self.slots.is_some()),
                ];
                if let Some((member, _)) = given.iter().find(|(_, given)| *given) {
                    return Err(invalid(
                        member,
                        "applies to the workloads beyond the counter: add a workload (stock, transfer, ...)".to_owned(),
                    ));
                }
                match self.isolation {
                    None => None,
                    Some(level) => {
                        counter_at_level_fits(kind, self.post)?;
                        // `sharded`'s slot rows are the server's (`--slots`), as without a level.
                        let sizes = Sizes { slots: usize::from(bounds.slots), ..Sizes::default() };
                        Some(WorkloadPlan { workload: Workload::Counter, isolation: Some(level), sizes })
                    }
                }
            }
            other => {
                if kind != Kind::Lab {
                    let kind = serde_json::to_value(kind).ok().and_then(|k| k.as_str().map(str::to_owned));
                    return Err(invalid(
                        "workload",
                        format!(
                            "`{other}` runs in a lab only: a {} runs the counter (omit workload or give counter)",
                            kind.unwrap_or_default()
                        ),
                    ));
                }
                if self.lock_mode.is_some() {
                    return Err(invalid("lock_mode", format!("applies to the counter, not to the {other} workload")));
                }
                if self.post.is_some() {
                    return Err(invalid(
                        "post",
                        format!("applies to the counter: the {other} workload makes rows of its own for each run"),
                    ));
                }
                Some(WorkloadPlan {
                    workload: other,
                    isolation: self.isolation,
                    sizes: Sizes {
                        stock: self.stock,
                        accounts: self.accounts.unwrap_or(Sizes::DEFAULT_ACCOUNTS),
                        doctors: self.doctors.unwrap_or(Sizes::DEFAULT_DOCTORS),
                        jobs: self.jobs,
                        rooms: self.rooms.unwrap_or(Sizes::DEFAULT_ROOMS),
                        slots: self.slots.unwrap_or(Sizes::DEFAULT_SLOTS),
                    },
                })
            }
        };
        let plan = Plan { strategies, workers, increments, force_race, lock_mode, post: self.post, workload };
        // An anomalies run takes no settings; they were checked all the same.
        Ok(ExperimentRequest { kind, plan: (kind != Kind::Anomalies).then_some(plan), spec: None })
    }

    /// A spec run: the spec parsed (a 422 naming `spec` with the line and column where it does not),
    /// its permutations chosen and bounded, and no member of the other kinds.
    fn spec_run(self) -> Result<ExperimentRequest, ApiError> {
        let others = [
            ("strategies", self.strategies.is_some()),
            ("workers", self.workers.is_some()),
            ("increments", self.increments.is_some()),
            ("force_race", self.force_race.is_some()),
            ("lock_mode", self.lock_mode.is_some()),
            ("post", self.post.is_some()),
            ("workload", self.workload.is_some()),
            ("isolation", self.isolation.is_some()),
            ("stock", self.stock.is_some()),
            ("accounts", self.accounts.is_some()),
            ("doctors", self.doctors.is_some()),
            ("jobs", self.jobs.is_some()),
            ("rooms", self.rooms.is_some()),
            ("slots", self.slots.is_some()),
        ];
        if let Some((member, _)) = others.iter().find(|(_, given)| *given) {
            return Err(invalid(member, "does not apply to a spec run: the spec says what runs".to_owned()));
        }
        let Some(text) = self.spec else {
            return Err(invalid("spec", "is required for a spec run: the spec file's text".to_owned()));
        };
        let parsed = spec::parse(&text).map_err(|err| invalid("spec", format!("does not parse: {err}")))?;
        if parsed.sessions.len() > MAX_SPEC_SESSIONS {
            return Err(invalid(
                "spec",
                format!("has {} sessions; a spec run opens at most {MAX_SPEC_SESSIONS}", parsed.sessions.len()),
            ));
        }
        let permutations = match &self.permutation {
            Some(line) => vec![
                spec::parse_permutation(line, &parsed)
                    .map_err(|err| invalid("permutation", format!("does not parse: {err}")))?,
            ],
            None => {
                let count = match parsed.permutations.len() {
                    0 => spec::count_permutations(&parsed),
                    lines => lines as u128,
                };
                if count > MAX_SPEC_PERMUTATIONS {
                    return Err(invalid(
                        "spec",
                        format!(
                            "has {count} permutations (at most {MAX_SPEC_PERMUTATIONS} a run): name fewer with \
                            permutation lines, or one with `permutation`"
                        ),
                    ));
                }
                parsed.permutations()
            }
        };
        let plan = SpecPlan {
            spec: text,
            permutation: self.permutation,
            step_timeout: self.step_timeout.unwrap_or(DEFAULT_STEP_TIMEOUT),
            parsed,
            permutations,
        };
        Ok(ExperimentRequest { kind: Kind::Spec, plan: None, spec: Some(plan) })
    }
}

/// The counter at a level runs through the workloads' runner, in a lab (as the other workloads do), and
/// makes a fresh post for each run (`post` is the counter's without a level).
fn counter_at_level_fits(kind: Kind, post: Option<i64>) -> Result<(), ApiError> {
    if kind != Kind::Lab {
        return Err(invalid(
            "isolation",
            "runs the counter through the workloads' runner, in a lab only (kind: lab); omit it for the \
             database's own level"
                .to_owned(),
        ));
    }
    if post.is_some() {
        return Err(invalid(
            "post",
            "applies to the counter without isolation: at a level each run makes a fresh post of its own".to_owned(),
        ));
    }
    Ok(())
}

/// The strategies to run (default: every one the database supports), each once, `pessimistic` at
/// `lock_mode` and `sharded` over the server's slots.
fn supported(names: Option<Vec<Strategy>>, bounds: &Bounds, lock_mode: LockMode) -> Result<Vec<Strategy>, ApiError> {
    let adjust = |s: Strategy| match s {
        Strategy::Pessimistic(LockMode::Wait) => Strategy::Pessimistic(lock_mode),
        other => other.with_slots(bounds.slots),
    };
    let Some(names) = names else {
        return Ok(Strategy::all_for(bounds.backend).into_iter().map(adjust).collect());
    };
    let mut strategies: Vec<Strategy> = Vec::with_capacity(names.len());
    for strategy in names {
        if !strategy.supported_on(bounds.backend) {
            return Err(invalid("strategies", format!("`{strategy}` is not supported on {}", bounds.backend)));
        }
        let strategy = adjust(strategy);
        if !strategies.contains(&strategy) {
            strategies.push(strategy);
        }
    }
    Ok(strategies)
}

/// A workload's strategies (default: all of them), by their names exactly, each once.
fn workload_strategies(workload: Workload, names: Option<Vec<String>>) -> Result<Vec<Pick>, ApiError> {
    let known = workload.strategies();
    let Some(names) = names else {
        return Ok(known.into_iter().map(Pick::Workload).collect());
    };
    let mut strategies: Vec<Pick> = Vec::with_capacity(names.len());
    for name in names {
        let Some(strategy) = known.iter().copied().find(|k| *k == name) else {
            return Err(invalid(
                "strategies",
                format!("`{}` is not a {workload} strategy; expected one of: {}", echo(&name), known.join(", ")),
            ));
        };
        if !strategies.contains(&Pick::Workload(strategy)) {
            strategies.push(Pick::Workload(strategy));
        }
    }
    Ok(strategies)
}

/// One worker count, within this server's limit.
fn count(sent: &Sent, bounds: &Bounds) -> Result<usize, ApiError> {
    sent.up_to(bounds.max_workers as i64).map(|n| n as usize).ok_or_else(|| {
        let max = bounds.max_workers;
        invalid("workers", format!("must be an integer between 1 and {max} (this server's limit), got `{}`", sent.text))
    })
}

/// A sweep's worker counts (default: 1, 2, 4, 8 within the limit), sorted, without repeats.
fn sweep(sent: Option<Counts>, bounds: &Bounds) -> Result<Vec<usize>, ApiError> {
    let mut counts = match sent {
        None => [1, 2, 4, 8].into_iter().filter(|n| *n <= bounds.max_workers).collect(),
        Some(Counts::One(one)) => vec![count(&one, bounds)?],
        Some(Counts::List(list)) if (1..=MAX_SWEEP).contains(&list.len()) => {
            list.iter().map(|one| count(one, bounds)).collect::<Result<_, _>>()?
        }
        Some(Counts::List(_)) => {
            return Err(invalid("workers", format!("must list 1 to {MAX_SWEEP} worker counts")));
        }
    };
    counts.sort_unstable();
    counts.dedup();
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use racelab_core::Backend;
    use serde_json::json;

    use super::*;
    use crate::http::json_body::members;

    fn bounds() -> Bounds {
        Bounds { backend: Backend::Sqlite, max_workers: 32, max_increments: 1000, slots: 64 }
    }

    /// A body read as `POST /experiments` reads it, after its media type and syntax.
    fn read(body: Value) -> Result<ExperimentRequest, ApiError> {
        members::<ExperimentBody>(body)?.validate(&bounds())
    }

    fn refused(body: Value) -> String {
        match read(body.clone()) {
            Err(ApiError::InvalidBody { name, .. }) => name,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_lab_body_is_normalized_with_its_defaults() {
        let request =
            read(json!({"kind": "lab", "strategies": ["naive", "pessimistic"], "lock_mode": "nowait"})).unwrap();
        let shown = serde_json::to_value(&request).unwrap();
        assert_eq!(
            shown,
            json!({"kind": "lab", "strategies": ["naive", "pessimistic-nowait"], "workers": 2, "increments": 10,
                "force_race": false, "lock_mode": "nowait", "post": null})
        );
        let all = read(json!({"kind": "bench", "workers": [8, 1, 8]})).unwrap();
        let plan = all.plan.unwrap();
        assert_eq!(plan.workers, Workers::Sweep(vec![1, 8]));
        assert!(!plan.strategies.contains(&Pick::Counter(Strategy::Advisory)), "not on SQLite");
        assert_eq!(plan.cells().len(), plan.strategies.len() * 2);
        let anomalies = read(json!({"kind": "anomalies", "workers": 4})).unwrap();
        assert_eq!(serde_json::to_value(&anomalies).unwrap(), json!({"kind": "anomalies"}));
    }

    #[test]
    fn every_refusal_names_its_member() {
        assert_eq!(refused(json!([1])), "body");
        assert_eq!(refused(json!({})), "kind");
        assert_eq!(refused(json!({"kind": "lap"})), "kind");
        assert_eq!(refused(json!({"kind": "lab", "workers": 0})), "workers");
        assert_eq!(refused(json!({"kind": "lab", "workers": 33})), "workers");
        assert_eq!(refused(json!({"kind": "lab", "workers": [2, 0]})), "workers");
        assert_eq!(refused(json!({"kind": "lab", "workers": "2"})), "workers");
        assert_eq!(refused(json!({"kind": "bench", "workers": []})), "workers");
        assert_eq!(refused(json!({"kind": "lab", "increments": 1001})), "increments");
        assert_eq!(refused(json!({"kind": "lab", "strategies": ["optimstic"]})), "strategies");
        assert_eq!(refused(json!({"kind": "lab", "strategies": ["advisory"]})), "strategies");
        assert_eq!(refused(json!({"kind": "lab", "strategies": []})), "strategies");
        assert_eq!(refused(json!({"kind": "lab", "force_race": "yes"})), "force_race");
        assert_eq!(refused(json!({"kind": "lab", "lock_mode": "wiat"})), "lock_mode");
        assert_eq!(refused(json!({"kind": "lab", "post": 0})), "post");
        assert_eq!(refused(json!({"kind": "lab", "colour": "red"})), "colour");
        assert_eq!(refused(json!({"kind": "anomalies", "increments": 11_000})), "increments");
    }

    #[test]
    fn a_workload_lab_takes_its_own_strategies_and_sizes() {
        let request = read(json!({"kind": "lab", "workload": "stock", "strategies": ["naive", "conditional", "naive"],
            "isolation": "repeatable-read", "stock": 3}))
        .unwrap();
        let shown = serde_json::to_value(&request).unwrap();
        assert_eq!(
            shown,
            json!({"kind": "lab", "strategies": ["naive", "conditional"], "workers": 2, "increments": 10,
                "force_race": false, "lock_mode": "wait", "post": null, "workload": "stock",
                "isolation": "repeatable-read", "stock": 3, "accounts": 8, "doctors": 4, "jobs": null,
                "rooms": 4, "slots": 64})
        );
        // Every workload's strategies by default, whatever the list holds.
        for workload in Workload::ALL.into_iter().filter(|w| *w != Workload::Counter) {
            let plan = read(json!({"kind": "lab", "workload": workload.name()})).unwrap().plan.unwrap();
            let names: Vec<String> = plan.strategies.iter().map(ToString::to_string).collect();
            assert_eq!(names, workload.strategies(), "{workload}");
        }
        // The bounds are `Sizes`' own, each end included.
        let plan = read(json!({"kind": "lab", "workload": "booking", "rooms": Sizes::MAX_ROOMS, "slots": 1}))
            .unwrap()
            .plan
            .unwrap();
        let sizes = plan.workload.map(|w| (w.sizes.rooms, w.sizes.slots));
        assert_eq!(sizes, Some((Sizes::MAX_ROOMS, 1)));
        let plan = read(json!({"kind": "lab", "workload": "booking", "rooms": 1, "slots": Sizes::MAX_SLOTS}))
            .unwrap()
            .plan
            .unwrap();
        assert_eq!(plan.workload.map(|w| (w.sizes.rooms, w.sizes.slots)), Some((1, Sizes::MAX_SLOTS)));
        // The counter's body is as it always was.
        let counter = read(json!({"kind": "lab", "workload": "counter"})).unwrap();
        assert!(serde_json::to_value(&counter).unwrap().get("workload").is_none());
    }

    #[test]
    fn the_counter_at_a_level_is_a_workload_lab_of_its_strategies() {
        let request = read(json!({"kind": "lab", "strategies": ["naive", "pessimistic", "sharded"],
            "lock_mode": "nowait", "isolation": "read-committed"}))
        .unwrap();
        let plan = request.plan.unwrap();
        // By their names, run by the workloads' runner; `pessimistic` in the lock mode, as without a level.
        let expected = [Pick::Workload("naive"), Pick::Workload("pessimistic-nowait"), Pick::Workload("sharded")];
        assert_eq!(plan.strategies, expected);
        let workload = plan.workload.unwrap();
        assert_eq!((workload.workload, workload.isolation), (Workload::Counter, Some(Isolation::ReadCommitted)));
        // `sharded`'s slot rows are the server's.
        assert_eq!(workload.sizes.slots, usize::from(bounds().slots));
        // Every strategy the database supports by default (no `advisory` on SQLite).
        let plan = read(json!({"kind": "lab", "workload": "counter", "isolation": "serializable"})).unwrap().plan;
        let names: Vec<String> = plan.unwrap().strategies.iter().map(ToString::to_string).collect();
        let supported: Vec<&str> = Strategy::all_for(bounds().backend).into_iter().map(Strategy::name).collect();
        assert_eq!(names, supported);
    }

    #[test]
    fn a_workload_refusal_names_its_member() {
        assert_eq!(refused(json!({"kind": "lab", "workload": "stocks"})), "workload");
        assert_eq!(refused(json!({"kind": "lab", "workload": "Stock"})), "workload");
        assert_eq!(refused(json!({"kind": "bench", "workload": "stock"})), "workload");
        assert_eq!(refused(json!({"kind": "anomalies", "workload": "transfer"})), "workload");
        assert_eq!(refused(json!({"kind": "lab", "workload": "stock", "strategies": ["atomic"]})), "strategies");
        assert_eq!(
            refused(json!({"kind": "lab", "workload": "transfer", "strategies": ["check-constraint"]})),
            "strategies"
        );
        assert_eq!(refused(json!({"kind": "lab", "strategies": ["conditional"]})), "strategies");
        assert_eq!(refused(json!({"kind": "lab", "workload": "stock", "isolation": "snapshot"})), "isolation");
        assert_eq!(refused(json!({"kind": "bench", "isolation": "serializable"})), "isolation");
        assert_eq!(refused(json!({"kind": "anomalies", "isolation": "read-committed"})), "isolation");
        assert_eq!(refused(json!({"kind": "lab", "isolation": "serializable", "post": 1})), "post");
        assert_eq!(refused(json!({"kind": "lab", "isolation": "serializable", "stock": 5})), "stock");
        assert_eq!(
            refused(json!({"kind": "lab", "workload": "counter", "isolation": "serializable", "slots": 8})),
            "slots"
        );
        assert_eq!(refused(json!({"kind": "lab", "stock": 5})), "stock");
        assert_eq!(refused(json!({"kind": "lab", "workload": "stock", "stock": -1})), "stock");
        assert_eq!(refused(json!({"kind": "lab", "workload": "transfer", "accounts": 1})), "accounts");
        assert_eq!(refused(json!({"kind": "lab", "workload": "stock", "doctors": 0})), "doctors");
        assert_eq!(refused(json!({"kind": "lab", "workload": "stock", "jobs": 100_001})), "jobs");
        assert_eq!(refused(json!({"kind": "lab", "jobs": 3})), "jobs");
        assert_eq!(refused(json!({"kind": "lab", "workload": "booking", "rooms": 0})), "rooms");
        assert_eq!(refused(json!({"kind": "lab", "workload": "booking", "rooms": 10_001})), "rooms");
        assert_eq!(refused(json!({"kind": "lab", "workload": "booking", "slots": 0})), "slots");
        assert_eq!(refused(json!({"kind": "lab", "workload": "booking", "slots": 1025})), "slots");
        assert_eq!(refused(json!({"kind": "lab", "workload": "booking", "slots": 2.5})), "slots");
        assert_eq!(refused(json!({"kind": "lab", "rooms": 2})), "rooms");
        assert_eq!(refused(json!({"kind": "lab", "slots": 2})), "slots");
        assert_eq!(refused(json!({"kind": "lab", "workload": "stock", "post": 1})), "post");
        assert_eq!(refused(json!({"kind": "lab", "workload": "stock", "lock_mode": "nowait"})), "lock_mode");
        let Err(ApiError::InvalidBody { reason, .. }) =
            read(json!({"kind": "lab", "workload": "stock", "strategies": ["atomic"]}))
        else {
            panic!("a counter strategy was accepted for stock");
        };
        assert!(reason.contains("`atomic` is not a stock strategy") && reason.contains("conditional"), "{reason}");
    }

    #[test]
    fn a_spec_body_is_parsed_and_shown_back_as_sent() {
        let text = "session s1 step a { SELECT 1; } step b { SELECT 2; }\nsession s2 step c { SELECT 3; }";
        let request = read(json!({"kind": "spec", "spec": text})).unwrap();
        let shown = serde_json::to_value(&request).unwrap();
        assert_eq!(shown, json!({"kind": "spec", "spec": text, "permutation": null, "step_timeout": 10}));
        let plan = request.spec.unwrap();
        // No permutation lines: every interleaving that keeps each session's order.
        assert_eq!(plan.permutations.len(), 3);
        let one = read(json!({"kind": "spec", "spec": text, "permutation": "c a b", "step_timeout": 60})).unwrap();
        let plan = one.spec.unwrap();
        let names: Vec<&str> = plan.permutations[0].steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!((names, plan.step_timeout), (vec!["c", "a", "b"], 60));
        // The longest spec the document allows is read (counted in characters, as `maxLength` counts).
        let long = format!("{text}\n#{}", "é".repeat(MAX_SPEC_CHARS - text.chars().count() - 2));
        assert_eq!(long.chars().count(), MAX_SPEC_CHARS);
        assert!(read(json!({"kind": "spec", "spec": long})).is_ok());
    }

    #[test]
    fn a_spec_refusal_names_its_member() {
        let text = "session s1 step a { SELECT 1; }";
        assert_eq!(refused(json!({"kind": "spec"})), "spec");
        assert_eq!(refused(json!({"kind": "spec", "spec": "session"})), "spec");
        assert_eq!(refused(json!({"kind": "spec", "spec": text, "increments": 5})), "increments");
        assert_eq!(refused(json!({"kind": "spec", "spec": text, "slots": 5})), "slots");
        assert_eq!(refused(json!({"kind": "spec", "spec": text, "permutation": "b"})), "permutation");
        assert_eq!(refused(json!({"kind": "spec", "spec": text, "permutation": 1})), "permutation");
        assert_eq!(refused(json!({"kind": "spec", "spec": text, "step_timeout": 1.5})), "step_timeout");
        assert_eq!(refused(json!({"kind": "lab", "step_timeout": 5})), "step_timeout");
        assert_eq!(refused(json!({"kind": "anomalies", "spec": text})), "spec");
    }

    #[test]
    fn an_unknown_member_is_refused_with_the_members_in_their_order() {
        let Err(ApiError::InvalidBody { name, reason }) = read(json!({"kind": "lab", "colour": "red"})) else {
            panic!("an unknown member was accepted");
        };
        assert_eq!(name, "colour");
        assert_eq!(
            reason,
            "is not a member of an experiment; the members are kind, strategies, workers, increments, force_race, \
            lock_mode, post, workload, isolation, stock, accounts, doctors, jobs, rooms, slots, spec, permutation, \
            step_timeout"
        );
    }
}
