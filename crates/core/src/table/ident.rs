//! The names a caller gives for a table and its columns, checked before any SQL is made of them.
//!
//! A name is quoted in every statement (so a reserved word such as `order` or `like` works), and it
//! is checked first so that quoting can never be escaped: letters, digits and `_`, not starting with
//! a digit, at most 63 bytes (PostgreSQL's limit, the lowest of the three). A table may be qualified
//! by its schema (`shop.inventory`). Quoted names are compared as written: PostgreSQL folds unquoted
//! names to lower case when a table is created, so name it as the database stores it.

/// The most bytes one name may have (PostgreSQL truncates longer ones).
pub const MAX_NAME_LEN: usize = 63;

/// A name that cannot be used as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {what} name {name:?} {reason}")]
pub struct IdentError {
    /// `table`, `key column` or `value column`.
    pub what: &'static str,
    pub name: String,
    pub reason: &'static str,
}

/// Checks one name; `what` says which one it is, for the error.
pub(crate) fn check(what: &'static str, name: &str) -> Result<(), IdentError> {
    let refuse = |reason| Err(IdentError { what, name: name.to_owned(), reason });
    let Some(first) = name.chars().next() else { return refuse("is empty") };
    if name.len() > MAX_NAME_LEN {
        return refuse("is longer than 63 bytes");
    }
    if first.is_ascii_digit() {
        return refuse("starts with a digit");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return refuse("may hold only letters, digits and _");
    }
    Ok(())
}

/// Checks a table's name, `table` or `schema.table`; its parts.
pub(crate) fn check_table(name: &str) -> Result<Vec<&str>, IdentError> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 {
        return Err(IdentError { what: "table", name: name.to_owned(), reason: "has more than one '.'" });
    }
    for part in &parts {
        check("table", part).map_err(|e| IdentError { name: name.to_owned(), ..e })?;
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_reserved_words_and_a_schema_pass() {
        for name in ["inventory", "order", "like", "_private", "Stock2", &"a".repeat(63)] {
            assert_eq!(check("table", name), Ok(()), "{name}");
        }
        assert_eq!(check_table("shop.inventory"), Ok(vec!["shop", "inventory"]));
    }

    #[test]
    fn names_that_could_escape_their_quotes_are_refused() {
        for (name, reason) in [
            ("", "is empty"),
            ("1st", "starts with a digit"),
            ("inv\"; DROP TABLE x; --", "may hold only letters, digits and _"),
            ("inv`", "may hold only letters, digits and _"),
            ("a b", "may hold only letters, digits and _"),
            ("qty?", "may hold only letters, digits and _"),
            ("é", "may hold only letters, digits and _"),
        ] {
            let err = check("value column", name).unwrap_err();
            assert_eq!((err.what, err.reason), ("value column", reason), "{name}");
        }
        assert_eq!(check("key column", &"a".repeat(64)).unwrap_err().reason, "is longer than 63 bytes");
        let err = check_table("a.b.c").unwrap_err();
        assert_eq!(err.to_string(), "the table name \"a.b.c\" has more than one '.'");
        assert_eq!(check_table("shop.").unwrap_err().name, "shop.", "the whole name is said");
    }
}
