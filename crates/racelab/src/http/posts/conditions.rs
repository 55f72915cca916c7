//! The conditional headers of a write (`If-Match`, `If-None-Match`; RFC 9110 §13.1) read into the
//! versions a write may replace, and a refused precondition turned into its answer (412, 428). It must
//! never let a write through that names no version.

use axum::http::{HeaderMap, header};
use racelab_core::db::{Expected, Precondition};
use racelab_core::{DbError, ErrorKind};

use super::body::etag;
use crate::http::echo::echo;
use crate::http::error::ApiError;

/// An entity-tag of a conditional header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EntityTag {
    weak: bool,
    opaque: String,
}

/// A conditional header's value: `*` or a list of entity-tags (RFC 9110 §13.1.1, §13.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Condition {
    Any,
    Tags(Vec<EntityTag>),
}

impl Condition {
    /// Reads header `name` (all its field lines); `None` if absent.
    pub(super) fn from_headers(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<Self>, ApiError> {
        let invalid = |reason: String| ApiError::InvalidPart { part: "header", name: name.to_string(), reason };
        let mut values = Vec::new();
        for value in headers.get_all(&name) {
            values.push(value.to_str().map_err(|_| invalid("must be ASCII".into()))?);
        }
        if values.is_empty() {
            return Ok(None);
        }
        let joined = values.join(",");
        if joined.trim() == "*" {
            return Ok(Some(Condition::Any));
        }
        parse_tags(&joined)
            .map(|tags| Some(Condition::Tags(tags)))
            .map_err(|reason| invalid(format!("{reason}, got `{}`", echo(&joined))))
    }

    /// The versions a write may replace (strong comparison: a weak tag never matches).
    fn expected(&self) -> Expected {
        match self {
            Condition::Any => Expected::Any,
            Condition::Tags(tags) => {
                Expected::OneOf(tags.iter().filter(|t| !t.weak).filter_map(|t| version_of(&t.opaque)).collect())
            }
        }
    }

    /// Whether a representation at `version` matches (weak comparison, as `If-None-Match` uses).
    pub(super) fn matches_weakly(&self, version: i64) -> bool {
        match self {
            Condition::Any => true,
            Condition::Tags(tags) => tags.iter().any(|t| version_of(&t.opaque) == Some(version)),
        }
    }
}

/// The version an opaque tag names, if it is one of ours (a plain decimal).
fn version_of(opaque: &str) -> Option<i64> {
    let canonical = !opaque.is_empty() && opaque.bytes().all(|b| b.is_ascii_digit());
    let canonical = canonical && (opaque == "0" || !opaque.starts_with('0'));
    canonical.then(|| opaque.parse().ok()).flatten()
}

/// `#entity-tag`: `"x"` or `W/"x"`, separated by commas and optional whitespace. The list may be empty
/// (RFC 9110 §5.6.1): it then matches nothing.
fn parse_tags(value: &str) -> Result<Vec<EntityTag>, String> {
    const EXPECTED: &str = "must be `*` or a list of entity-tags such as `\"3\"`";
    let mut tags = Vec::new();
    let mut rest = value.trim_start_matches([' ', '\t', ',']);
    while !rest.is_empty() {
        let (weak, quoted) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let inner = quoted.strip_prefix('"').ok_or(EXPECTED)?;
        let end = inner.find('"').ok_or(EXPECTED)?;
        let opaque = &inner[..end];
        // etagc: any visible ASCII but the double quote (obs-text is refused: these are ours).
        if !opaque.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b)) {
            return Err(EXPECTED.into());
        }
        tags.push(EntityTag { weak, opaque: opaque.to_owned() });
        let after = inner[end + 1..].trim_start_matches([' ', '\t']);
        if !(after.is_empty() || after.starts_with(',')) {
            return Err(EXPECTED.into());
        }
        rest = after.trim_start_matches([' ', '\t', ',']);
    }
    Ok(tags)
}

/// The `If-Match` a write must carry, as the versions it accepts. One that names no entity-tag at all
/// (`If-Match:` empty, or only commas) is malformed, a 400: it is not a precondition that failed (412),
/// since it states none, and it is not missing (428) either.
pub(super) fn required_if_match(headers: &HeaderMap) -> Result<Expected, ApiError> {
    match Condition::from_headers(headers, header::IF_MATCH)? {
        None => Err(ApiError::PreconditionRequired),
        Some(Condition::Tags(tags)) if tags.is_empty() => Err(ApiError::InvalidPart {
            part: "header",
            name: header::IF_MATCH.to_string(),
            reason: "must be `*` or at least one entity-tag such as `\"3\"`, got none".into(),
        }),
        Some(condition) => Ok(condition.expected()),
    }
}

/// What a conditional write's outcome means to the client.
pub(super) fn precondition<T>(outcome: Precondition<T>, pk: i64) -> Result<T, ApiError> {
    match outcome {
        Precondition::Met(value) => Ok(value),
        Precondition::Failed(current) => Err(ApiError::PreconditionFailed { etag: etag(current.version) }),
        Precondition::Missing => Err(DbError::new(ErrorKind::NotFound, format!("post {pk} does not exist")).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tags_are_read_as_rfc_9110_writes_them() {
        let strong = |o: &str| EntityTag { weak: false, opaque: o.into() };
        assert_eq!(parse_tags(r#""3""#), Ok(vec![strong("3")]));
        assert_eq!(
            parse_tags(r#" "3" , W/"4","x,y""#),
            Ok(vec![strong("3"), EntityTag { weak: true, opaque: "4".into() }, strong("x,y")])
        );
        assert_eq!(parse_tags(""), Ok(vec![]));
        assert_eq!(parse_tags(" , "), Ok(vec![]));
        for bad in ["3", r#""3"#, r#""3" 4"#, r#"w/"3""#] {
            assert!(parse_tags(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_strong_tags_of_plain_decimals_name_versions() {
        let condition = Condition::Tags(parse_tags(r#""3", W/"4", "05", "0", "x""#).unwrap());
        assert_eq!(condition.expected(), Expected::OneOf(vec![3, 0]));
        assert!(condition.matches_weakly(4));
        assert!(!condition.matches_weakly(5));
    }
}
