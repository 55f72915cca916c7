//! Query string parsing whose every error is a 400 problem naming the parameter and what it accepts.
//!
//! axum's `Query<T>` rejects with a plain-text body, and serde's messages for a bad number do not
//! even name the field ("invalid digit found in string"). So the query is decoded into pairs here and
//! each parameter is parsed by hand against its documented bounds; unknown parameters are refused
//! too, so a typo (`worker=16`) cannot silently run the default.

use std::ops::RangeInclusive;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;

use super::error::ApiError;

/// The decoded `name=value` pairs of one request.
#[derive(Debug, Default)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// The value of `name` (the last one if it is repeated).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// An integer in `range`, or `default` when absent.
    pub fn int(&self, name: &str, default: i64, range: RangeInclusive<i64>) -> Result<i64, ApiError> {
        let Some(text) = self.get(name) else { return Ok(default) };
        let out_of_range = || {
            ApiError::invalid(
                name,
                format!("must be an integer between {} and {}, got `{text}`", range.start(), range.end()),
            )
        };
        let value: i64 = text.trim().parse().map_err(|_| out_of_range())?;
        if range.contains(&value) { Ok(value) } else { Err(out_of_range()) }
    }

    /// `true` or `false` (also `1`/`0`), or `default` when absent.
    pub fn bool(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name).map(str::trim) {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(ApiError::invalid(name, format!("must be `true` or `false`, got `{other}`"))),
        }
    }

    /// One of `allowed` (by name), or `default` when absent.
    pub fn choice<T: Copy>(&self, name: &str, default: T, allowed: &[(&str, T)]) -> Result<T, ApiError> {
        let Some(text) = self.get(name) else { return Ok(default) };
        allowed.iter().find(|(label, _)| *label == text.trim()).map(|(_, value)| *value).ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|(label, _)| *label).collect();
            ApiError::invalid(name, format!("must be one of {}, got `{text}`", names.join(", ")))
        })
    }

    /// Refuses parameters the endpoint does not know.
    fn reject_unknown(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.pairs.iter().find(|(key, _)| !known.contains(&key.as_str())) {
            None => Ok(()),
            Some((key, _)) if known.is_empty() => {
                Err(ApiError::invalid(key, "is not a parameter of this endpoint, which takes none"))
            }
            Some((key, _)) => Err(ApiError::invalid(
                key,
                format!("is not a parameter of this endpoint; it takes {}", known.join(", ")),
            )),
        }
    }
}

/// Parameters an endpoint takes, parsed from the query.
pub trait FromQuery: Sized {
    /// Every parameter name the endpoint accepts.
    const NAMES: &'static [&'static str];
    fn from_query(params: &QueryParams) -> Result<Self, ApiError>;
}

/// The query extractor: `ApiQuery<T>` where `T: FromQuery`; rejections are problem+json.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: FromQuery> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|rejection| ApiError::BadQuery(rejection.body_text()))?;
        let params = QueryParams { pairs };
        params.reject_unknown(T::NAMES)?;
        T::from_query(&params).map(ApiQuery)
    }
}

/// For endpoints without parameters: refuses any.
#[derive(Debug)]
pub struct NoParams;

impl FromQuery for NoParams {
    const NAMES: &'static [&'static str] = &[];
    fn from_query(_: &QueryParams) -> Result<Self, ApiError> {
        Ok(NoParams)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams { pairs: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn integers_name_the_field_and_range() {
        let p = params(&[("workers", "-1"), ("increments", "abc")]);
        let err = p.int("workers", 2, 1..=32).unwrap_err().to_string();
        assert_eq!(err, "query parameter `workers` must be an integer between 1 and 32, got `-1`");
        assert!(p.int("increments", 25, 1..=1000).unwrap_err().to_string().contains("`increments`"));
        assert_eq!(p.int("post", 1, 1..=10).unwrap(), 1);
    }

    #[test]
    fn choices_list_the_allowed_values() {
        let p = params(&[("mode", "sometimes")]);
        let err = p.choice("mode", 0, &[("wait", 0), ("nowait", 1)]).unwrap_err().to_string();
        assert!(err.contains("must be one of wait, nowait, got `sometimes`"), "{err}");
    }

    #[test]
    fn unknown_parameters_are_refused() {
        let err = params(&[("worker", "3")]).reject_unknown(&["workers"]).unwrap_err().to_string();
        assert!(err.contains("`worker` is not a parameter"), "{err}");
    }
}
