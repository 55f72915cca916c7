//! [`Invariant`]: the verdict of a workload's proof, as the JSON carries it (`invariant: {name, held,
//! violations, detail}`). `held` is false exactly when `violations` is above zero; both are `null`
//! when the rows could not be read after the run (never a guess).

use serde::Serialize;

use crate::error::ErrorKind;

/// Whether the invariant held, and by how much it did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = InvariantSchema))]
pub struct Invariant {
    /// `no-oversell`, `money-conserved`, ...
    pub name: &'static str,
    /// `violations == 0`; `null` when the rows could not be read.
    pub held: Option<bool>,
    /// Oversold units, money created or destroyed, ...; `null` when the rows could not be read.
    pub violations: Option<u64>,
    /// What was seen, in one sentence.
    pub detail: String,
}

impl Invariant {
    /// The verdict of a check that counted `violations`.
    pub fn checked(name: &'static str, violations: u64, detail: impl Into<String>) -> Self {
        Self { name, held: Some(violations == 0), violations: Some(violations), detail: detail.into() }
    }

    /// No verdict: the rows could not be read after the run (`kind` says why).
    pub fn unread(name: &'static str, kind: ErrorKind) -> Self {
        Self {
            name,
            held: None,
            violations: None,
            detail: format!("the rows could not be read after the run ({kind}): nothing can be checked"),
        }
    }
}
