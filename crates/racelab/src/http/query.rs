//! Query strings read against the endpoint's own OpenAPI parameters, so the published document and
//! the parser cannot disagree: every error is a 400 problem naming the parameter and what it accepts.
//!
//! An endpoint's parameters are one struct that derives both `utoipa::IntoParams` (the document) and
//! `serde::Deserialize` (the value the handler gets). [`ApiQuery`](crate::http::query::ApiQuery) reads the struct's documented
//! parameters, applies the server's configured maxima to them (the same [`Limits`](crate::http::limits::Limits) the published
//! document shows), and checks the query against them before serde sees it:
//! - a parameter the endpoint does not document is refused (a typo such as `worker=16` must not
//!   silently run the default), and so is a parameter given twice (which one would win?);
//! - integers are plain decimal within the documented minimum and maximum (no sign, no leading
//!   zeros, no spaces: `+2`, `0002` and ` 2` are refused, so each number has one spelling);
//! - booleans are `true` or `false`, and strings one of the documented `enum` values;
//! - an absent parameter takes its documented default.
//!
//! A value echoed in an error is cut to [`ECHO_LIMIT`](crate::http::echo::ECHO_LIMIT) characters: a 60 kB value must not come back
//! twice in a 400 body.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterIn};

use super::echo::echo;
use super::error::ApiError;
use super::limits::Limits;
use super::state::AppState;

// Kept under this path: the tests read the limit here.
pub use super::echo::ECHO_LIMIT;

/// The query extractor: `ApiQuery<T>` where `T: IntoParams + Deserialize`; rejections are
/// problem+json naming the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T> FromRequestParts<AppState> for ApiQuery<T>
where
    T: IntoParams + DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|rejection| ApiError::BadQuery(echo(&rejection.body_text())))?;
        let accepted = accepted_parameters::<T>(&state.limits())?;
        let values = read(&pairs, &accepted)?;
        serde_json::from_value(Value::Object(values))
            .map(ApiQuery)
            .map_err(|e| ApiError::Internal(format!("validated query parameters do not deserialize: {e}")))
    }
}

/// `T`'s documented query parameters, with the configured maxima applied, as the parser reads them.
fn accepted_parameters<T: IntoParams>(limits: &Limits) -> Result<Vec<Accepted>, ApiError> {
    T::into_params(|| Some(ParameterIn::Query))
        .into_iter()
        .map(|mut parameter| {
            limits.apply(&mut parameter);
            Accepted::from_parameter(&parameter)
        })
        .collect()
}

/// One documented parameter: its name, what it accepts and its default.
#[derive(Debug, Clone, PartialEq)]
struct Accepted {
    name: String,
    kind: Kind,
    default: Option<Value>,
}

/// The value types the service's parameters use.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Integer { min: i64, max: i64 },
    Boolean,
    OneOf(Vec<String>),
}

impl Accepted {
    /// Reads the parameter's schema. A schema the parser cannot enforce is a bug of the endpoint's
    /// declaration (a 500 that every test of that endpoint sees), not something to let through.
    fn from_parameter(parameter: &Parameter) -> Result<Self, ApiError> {
        let schema = serde_json::to_value(&parameter.schema).unwrap_or(Value::Null);
        let unreadable =
            || ApiError::Internal(format!("parameter `{}` has a schema the parser cannot enforce", parameter.name));
        let bound = |key: &str| schema[key].as_i64().ok_or_else(unreadable);
        let kind = match (schema["type"].as_str(), schema["enum"].as_array()) {
            (Some("integer"), None) => Kind::Integer { min: bound("minimum")?, max: bound("maximum")? },
            (Some("boolean"), None) => Kind::Boolean,
            (Some("string"), Some(values)) => Kind::OneOf(
                values
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned).ok_or_else(unreadable))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(unreadable()),
        };
        let default = schema.get("default").cloned();
        Ok(Self { name: parameter.name.clone(), kind, default })
    }

    /// What this parameter accepts, in words (the end of every error message about it).
    fn allowed(&self) -> String {
        match &self.kind {
            Kind::Integer { min, max } => format!("must be an integer between {min} and {max}"),
            Kind::Boolean => "must be `true` or `false`".to_owned(),
            Kind::OneOf(values) => format!("must be one of {}", values.join(", ")),
        }
    }

    fn parse(&self, text: &str) -> Result<Value, ApiError> {
        let value = match &self.kind {
            Kind::Integer { min, max } => plain_decimal(text).filter(|n| (min..=max).contains(&n)).map(Value::from),
            Kind::Boolean => match text {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            Kind::OneOf(values) => values.iter().any(|v| v == text).then(|| Value::from(text)),
        };
        value.ok_or_else(|| ApiError::invalid(&self.name, format!("{}, got `{}`", self.allowed(), echo(text))))
    }
}

/// `text` as an integer if it is written in plain decimal: an optional `-`, then digits without a
/// leading zero (`0` itself aside). Anything else has no value, so each number has one spelling.
fn plain_decimal(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    if plain { text.parse().ok() } else { None }
}

/// Checks the query's pairs against the accepted parameters and returns every parameter's value
/// (the documented default where absent), as JSON for serde.
fn read(pairs: &[(String, String)], accepted: &[Accepted]) -> Result<Map<String, Value>, ApiError> {
    // Which parameters are given, and how often, before what they say: `mode=bogus&mode=nowait` is
    // refused as repeated, whichever value would have been read.
    let mut given = Vec::with_capacity(pairs.len());
    for (index, (name, text)) in pairs.iter().enumerate() {
        let Some(parameter) = accepted.iter().find(|p| &p.name == name) else {
            return Err(unknown(name, accepted));
        };
        if pairs[..index].iter().any(|(earlier, _)| earlier == name) {
            let times = pairs.iter().filter(|(other, _)| other == name).count();
            return Err(ApiError::invalid(
                name,
                format!("is given {times} times; give it once ({})", parameter.allowed()),
            ));
        }
        given.push((parameter, text));
    }
    let mut values = Map::new();
    for (parameter, text) in given {
        values.insert(parameter.name.clone(), parameter.parse(text)?);
    }
    for parameter in accepted {
        if let (false, Some(default)) = (values.contains_key(&parameter.name), &parameter.default) {
            values.insert(parameter.name.clone(), default.clone());
        }
    }
    Ok(values)
}

fn unknown(name: &str, accepted: &[Accepted]) -> ApiError {
    let name = echo(name);
    if accepted.is_empty() {
        return ApiError::invalid(&name, "is not a parameter of this endpoint, which takes none");
    }
    let names: Vec<&str> = accepted.iter().map(|p| p.name.as_str()).collect();
    ApiError::invalid(&name, format!("is not a parameter of this endpoint; it takes {}", names.join(", ")))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    /// A parameter struct of each kind the service uses.
    #[derive(Debug, Deserialize, IntoParams, PartialEq)]
    #[into_params(parameter_in = Query)]
    struct Sample {
        #[param(required = false, minimum = 1, default = 2)]
        workers: usize,
        #[param(required = false, minimum = 1, maximum = 7, default = 3)]
        post: i64,
        #[param(required = false, default = false)]
        force_race: bool,
    }

    fn sample(query: &[(&str, &str)]) -> Result<Sample, String> {
        let pairs: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let limits = Limits { max_workers: 4, max_increments: 10 };
        let accepted = accepted_parameters::<Sample>(&limits).map_err(|e| e.to_string())?;
        let values = read(&pairs, &accepted).map_err(|e| e.to_string())?;
        Ok(serde_json::from_value(Value::Object(values)).expect("deserializes"))
    }

    #[test]
    fn absent_parameters_take_their_documented_defaults() {
        assert_eq!(sample(&[]), Ok(Sample { workers: 2, post: 3, force_race: false }));
        assert_eq!(
            sample(&[("workers", "4"), ("force_race", "true")]).map(|s| (s.workers, s.force_race)),
            Ok((4, true))
        );
    }

    #[test]
    fn the_configured_maximum_is_enforced() {
        let err = sample(&[("workers", "5")]).unwrap_err();
        assert_eq!(err, "query parameter `workers` must be an integer between 1 and 4, got `5`");
    }

    #[test]
    fn numbers_have_one_spelling() {
        for text in ["+2", "0002", " 2", "2 ", "2.0", "0x2", "", "-", "-0", "٢", "99999999999999999999"] {
            let err = sample(&[("post", text)]).unwrap_err();
            assert!(err.contains("`post` must be an integer between 1 and 7"), "{text:?}: {err}");
        }
        assert!(sample(&[("post", "-1")]).unwrap_err().contains("got `-1`"));
        assert_eq!(plain_decimal("0"), Some(0));
        assert_eq!(plain_decimal("-12"), Some(-12));
    }

    #[test]
    fn booleans_are_true_or_false_only() {
        for text in ["1", "0", "TRUE", "yes", " true"] {
            let err = sample(&[("force_race", text)]).unwrap_err();
            assert!(err.contains("`force_race` must be `true` or `false`"), "{text:?}: {err}");
        }
    }

    #[test]
    fn repeated_and_unknown_parameters_are_named() {
        let err = sample(&[("workers", "x"), ("post", "1"), ("workers", "3")]).unwrap_err();
        assert!(err.contains("`workers` is given 2 times; give it once"), "{err}");
        let err = sample(&[("worker", "3")]).unwrap_err();
        assert!(
            err.contains("`worker` is not a parameter of this endpoint; it takes workers, post, force_race"),
            "{err}"
        );
    }

    #[test]
    fn echoed_values_are_cut() {
        let long = "9".repeat(60_000);
        let err = sample(&[("post", &long)]).unwrap_err();
        assert!(err.ends_with(&format!("got `{}…`", "9".repeat(ECHO_LIMIT))), "{}", &err[..200.min(err.len())]);
        assert_eq!(echo("ééé"), "ééé");
        assert_eq!(echo(&"é".repeat(41)).chars().count(), ECHO_LIMIT + 1);
    }
}
