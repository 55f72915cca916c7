//! The body of `POST /experiments`, read member by member: every refusal names the member (422), a
//! body that is not JSON is a 400, one of another media type a 415, one past the body limit a 413.
//! What is accepted is normalized (defaults filled in, names canonical) and shown back as `request`.
//!
//! It must never accept a body the published document refuses, nor refuse one it allows.

use racelab_core::{Backend, Experiment, LockMode, Strategy};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::http::echo::echo;
use crate::http::error::ApiError;
use crate::http::json_body::whole_number;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Each strategy once, `workers` x `increments`, as `racelab lab`.
    Lab,
    /// Each strategy at each worker count, as `racelab bench` (counted increments, not timed).
    Bench,
    /// Hermitage's isolation tests at every level of the database, as `racelab anomalies`.
    Anomalies,
}

/// Worker counts: one (a lab's usual), or a sweep (a bench's; a lab given a list runs each strategy at
/// each count too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Workers {
    One(usize),
    Sweep(Vec<usize>),
}

impl Workers {
    /// Each count, in order.
    pub fn counts(&self) -> Vec<usize> {
        match self {
            Workers::One(n) => vec![*n],
            Workers::Sweep(counts) => counts.clone(),
        }
    }
}

/// A lab or bench run's settings, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub strategies: Vec<Strategy>,
    pub workers: Workers,
    pub increments: u64,
    pub force_race: bool,
    #[serde(serialize_with = "lock_mode_name")]
    pub lock_mode: LockMode,
    /// `null`: each experiment on a fresh row of its own.
    pub post: Option<i64>,
}

fn lock_mode_name<S: serde::Serializer>(mode: &LockMode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(mode.as_str())
}

/// A validated request, as the run view shows it (`request`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExperimentRequest {
    pub kind: Kind,
    /// Absent for `anomalies`, which takes no settings.
    #[serde(flatten)]
    pub plan: Option<Plan>,
}

/// An experiment run to start.
// Documentation only: the extractor of `ExperimentRequest` reads the body, and `body_schema` replaces
// this schema in the published document with the server's own maxima.
#[derive(Debug, ToSchema)]
#[schema(example = json!({"kind": "lab", "strategies": ["naive", "atomic"], "workers": 2, "increments": 10,
    "force_race": true, "lock_mode": "wait"}))]
#[allow(dead_code)] // documentation only
pub struct ExperimentBody {
    kind: Kind,
    /// Strategy names (naive, atomic, pessimistic, pessimistic-nowait, pessimistic-skip-locked, optimistic,
    /// versioned, versioned-no-retry, serializable, advisory, sharded); default: every one the database
    /// supports. Not for `anomalies`.
    strategies: Option<Vec<String>>,
    /// One count (a lab's default: 2), or a list of at most 8 (a bench's default: [1, 2, 4, 8]), each from 1
    /// to the server's `--max-workers`.
    #[schema(value_type = Option<Object>, example = 2)]
    workers: Option<Value>,
    /// Increments per worker, 1 to the server's `--max-increments`; default 10 for a lab, 100 for a bench.
    #[schema(minimum = 1)]
    increments: Option<u64>,
    /// Make every worker read before any writes, on its first increment: the lost update, forced.
    force_race: Option<bool>,
    /// What `pessimistic` does at a locked row: `wait` (default), `nowait` or `skip-locked`.
    lock_mode: Option<String>,
    /// The post to work on (created if missing); runs on one post queue behind each other. Default: a
    /// fresh post per experiment.
    #[schema(minimum = 1, maximum = 2147483647)]
    post: Option<i64>,
}

/// The body's schema as this server accepts it: its maxima, and the strategies its database supports
/// (replacing the derived one in the published document, as `Limits::apply` does for query parameters,
/// so that a body the document allows is a body the server runs).
pub fn body_schema(bounds: &Bounds) -> Value {
    let strategies: Vec<&str> = Strategy::names()
        .iter()
        .copied()
        .filter(|name| name.parse::<Strategy>().is_ok_and(|s| s.supported_on(bounds.backend)))
        .collect();
    let count = json!({"type": "integer", "minimum": 1, "maximum": bounds.max_workers});
    let max_increments = bounds.max_increments.min(Experiment::MAX_INCREMENTS);
    json!({
        "type": "object",
        "description": "An experiment run. Members other than `kind` are optional (`null` is the default) and, \
            checked but not used, by `anomalies`.",
        "required": ["kind"],
        "additionalProperties": false,
        "properties": {
            "kind": {"type": "string", "enum": ["lab", "bench", "anomalies"],
                "description": "lab: each strategy once (traced when at most 4 workers x 10 increments); bench: \
                    each strategy at each worker count; anomalies: Hermitage's isolation tests"},
            "strategies": {"type": ["array", "null"], "minItems": 1, "items": {"type": "string", "enum": strategies},
                "description": "Default: every strategy the database supports"},
            "workers": {"oneOf": [
                count,
                {"type": "array", "minItems": 1, "maxItems": MAX_SWEEP, "items": count},
                {"type": "null"}
            ], "description": "One count (a lab's default: 2) or a list (a bench's default: [1, 2, 4, 8])"},
            "increments": {"type": ["integer", "null"], "minimum": 1, "maximum": max_increments,
                "description": "Per worker; default 10 for a lab, 100 for a bench"},
            "force_race": {"type": ["boolean", "null"],
                "description": "Every worker reads before any writes, on its first increment"},
            "lock_mode": {"type": ["string", "null"], "enum": ["wait", "nowait", "skip-locked", null],
                "description": "What `pessimistic` does at a locked row; default wait"},
            "post": {"type": ["integer", "null"], "minimum": 1, "maximum": i32::MAX,
                "description": "The post to work on (created if missing); default: a fresh post per experiment"}
        },
        "example": {"kind": "lab", "strategies": ["naive", "atomic"], "workers": 2, "increments": 10,
            "force_race": true, "lock_mode": "wait"}
    })
}

/// The most worker counts one bench sweeps.
pub const MAX_SWEEP: usize = 8;
/// The members a body may have.
const MEMBERS: [&str; 7] = ["kind", "strategies", "workers", "increments", "force_race", "lock_mode", "post"];

/// What a body is checked against: the server's database and limits.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub backend: Backend,
    pub max_workers: usize,
    pub max_increments: u64,
    /// Slot rows of the `sharded` strategy (`--slots`).
    pub slots: u16,
}

fn invalid(name: &str, reason: impl Into<String>) -> ApiError {
    ApiError::InvalidBody { name: name.to_owned(), reason: reason.into() }
}

impl ExperimentRequest {
    /// The members of a JSON object, each checked, each error naming its member.
    pub fn read(value: Value, bounds: &Bounds) -> Result<Self, ApiError> {
        let Value::Object(members) = value else {
            return Err(invalid("body", "must be a JSON object such as {\"kind\": \"lab\"}"));
        };
        if let Some(unknown) = members.keys().find(|name| !MEMBERS.contains(&name.as_str())) {
            return Err(invalid(
                &echo(unknown),
                format!("is not a member of an experiment; the members are {}", MEMBERS.join(", ")),
            ));
        }
        let kind = match members.get("kind").and_then(Value::as_str) {
            Some("lab") => Kind::Lab,
            Some("bench") => Kind::Bench,
            Some("anomalies") => Kind::Anomalies,
            None if members.get("kind").is_none() => {
                return Err(invalid("kind", "is required: lab, bench or anomalies"));
            }
            _ => {
                return Err(invalid(
                    "kind",
                    format!("must be lab, bench or anomalies, got `{}`", shown(&members, "kind")),
                ));
            }
        };
        // An anomalies run takes no settings, but a body the server would refuse for a lab is refused
        // for it too: the document has one schema for the body, whatever its kind.
        let plan = Plan::read(kind, &members, bounds)?;
        let plan = (kind != Kind::Anomalies).then_some(plan);
        Ok(Self { kind, plan })
    }
}

/// A member's JSON text, cut for an error message.
fn shown(members: &Map<String, Value>, name: &str) -> String {
    members.get(name).map(|v| echo(&v.to_string())).unwrap_or_default()
}

/// A member that is absent or `null`.
fn given<'a>(members: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    members.get(name).filter(|v| !v.is_null())
}

impl Plan {
    fn read(kind: Kind, members: &Map<String, Value>, bounds: &Bounds) -> Result<Self, ApiError> {
        let lock_mode = match given(members, "lock_mode") {
            None => LockMode::Wait,
            Some(Value::String(name)) => name.parse().map_err(|_| {
                invalid("lock_mode", format!("must be wait, nowait or skip-locked, got `{}`", echo(name)))
            })?,
            Some(_) => {
                return Err(invalid(
                    "lock_mode",
                    format!("must be a string (wait, nowait or skip-locked), got `{}`", shown(members, "lock_mode")),
                ));
            }
        };
        let strategies = read_strategies(members, bounds, lock_mode)?;
        let workers = match (kind, given(members, "workers")) {
            (Kind::Bench, _) | (_, Some(Value::Array(_))) => Workers::Sweep(read_sweep(members, bounds)?),
            (_, one) => Workers::One(read_workers(one, "workers", bounds)?.unwrap_or(2)),
        };
        let default_increments = if kind == Kind::Bench { 100 } else { 10 };
        let max_increments = bounds.max_increments.min(Experiment::MAX_INCREMENTS);
        let increments = match given(members, "increments") {
            None => default_increments.min(max_increments),
            Some(value) => match whole_number(value) {
                Some(n) if (1..=max_increments as i64).contains(&n) => n as u64,
                _ => {
                    return Err(invalid(
                        "increments",
                        format!(
                            "must be an integer between 1 and {max_increments}, got `{}`",
                            echo(&value.to_string())
                        ),
                    ));
                }
            },
        };
        let force_race = match given(members, "force_race") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(invalid(
                    "force_race",
                    format!("must be true or false, got `{}`", shown(members, "force_race")),
                ));
            }
        };
        let post = match given(members, "post") {
            None => None,
            Some(value) => match whole_number(value) {
                Some(pk) if (1..=i64::from(i32::MAX)).contains(&pk) => Some(pk),
                _ => {
                    return Err(invalid(
                        "post",
                        format!("must be an integer between 1 and {}, got `{}`", i32::MAX, echo(&value.to_string())),
                    ));
                }
            },
        };
        Ok(Self { strategies, workers, increments, force_race, lock_mode, post })
    }

    /// The experiments of the run, in order: each strategy at each worker count.
    pub fn cells(&self) -> Vec<(Strategy, usize)> {
        let counts = self.workers.counts();
        self.strategies.iter().flat_map(|s| counts.iter().map(move |w| (*s, *w))).collect()
    }
}

fn read_strategies(
    members: &Map<String, Value>,
    bounds: &Bounds,
    lock_mode: LockMode,
) -> Result<Vec<Strategy>, ApiError> {
    let adjust = |s: Strategy| match s {
        Strategy::Pessimistic(LockMode::Wait) => Strategy::Pessimistic(lock_mode),
        other => other.with_slots(bounds.slots),
    };
    let Some(value) = given(members, "strategies") else {
        return Ok(Strategy::all_for(bounds.backend).into_iter().map(adjust).collect());
    };
    let names = value.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
        invalid("strategies", format!("must be a non-empty list of strategy names, got `{}`", echo(&value.to_string())))
    })?;
    let mut strategies: Vec<Strategy> = Vec::with_capacity(names.len());
    for name in names {
        let Some(name) = name.as_str() else {
            return Err(invalid(
                "strategies",
                format!("must hold strategy names (strings), got `{}`", echo(&name.to_string())),
            ));
        };
        let strategy: Strategy =
            name.parse().map_err(|e: racelab_core::strategy::UnknownStrategy| invalid("strategies", e.to_string()))?;
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

/// One worker count, if given.
fn read_workers(value: Option<&Value>, name: &str, bounds: &Bounds) -> Result<Option<usize>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    match whole_number(value) {
        Some(n) if (1..=bounds.max_workers as i64).contains(&n) => Ok(Some(n as usize)),
        _ => Err(invalid(
            name,
            format!(
                "must be an integer between 1 and {} (this server's limit), got `{}`",
                bounds.max_workers,
                echo(&value.to_string())
            ),
        )),
    }
}

/// A bench's worker counts: a list (or one number), sorted, without repeats.
fn read_sweep(members: &Map<String, Value>, bounds: &Bounds) -> Result<Vec<usize>, ApiError> {
    let mut counts = match given(members, "workers") {
        None => [1, 2, 4, 8].into_iter().filter(|n| *n <= bounds.max_workers).collect(),
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_SWEEP => {
            let mut counts = Vec::with_capacity(items.len());
            for item in items {
                counts.push(read_workers(Some(item), "workers", bounds)?.unwrap_or(1));
            }
            counts
        }
        Some(Value::Array(_)) => return Err(invalid("workers", format!("must list 1 to {MAX_SWEEP} worker counts"))),
        one => vec![read_workers(one, "workers", bounds)?.unwrap_or(1)],
    };
    counts.sort_unstable();
    counts.dedup();
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn bounds() -> Bounds {
        Bounds { backend: Backend::Sqlite, max_workers: 32, max_increments: 1000, slots: 64 }
    }

    fn refused(body: Value) -> String {
        match ExperimentRequest::read(body.clone(), &bounds()) {
            Err(ApiError::InvalidBody { name, .. }) => name,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_lab_body_is_normalized_with_its_defaults() {
        let request = ExperimentRequest::read(
            json!({"kind": "lab", "strategies": ["naive", "pessimistic"], "lock_mode": "nowait"}),
            &bounds(),
        )
        .unwrap();
        let shown = serde_json::to_value(&request).unwrap();
        assert_eq!(
            shown,
            json!({"kind": "lab", "strategies": ["naive", "pessimistic-nowait"], "workers": 2, "increments": 10,
                "force_race": false, "lock_mode": "nowait", "post": null})
        );
        let all = ExperimentRequest::read(json!({"kind": "bench", "workers": [8, 1, 8]}), &bounds()).unwrap();
        let plan = all.plan.unwrap();
        assert_eq!(plan.workers, Workers::Sweep(vec![1, 8]));
        assert!(!plan.strategies.contains(&Strategy::Advisory), "not on SQLite");
        assert_eq!(plan.cells().len(), plan.strategies.len() * 2);
        let anomalies = ExperimentRequest::read(json!({"kind": "anomalies", "workers": 4}), &bounds()).unwrap();
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
}
