//! Where one SQL statement of a step ends and the next begins, as PostgreSQL's lexer sees it:
//! semicolons outside quotes ('...', E'...', "..."), dollar quotes ($tag$...$tag$) and comments
//! (-- and nested /* */).
//!
//! A step's statements go to the server as one query string, as isolationtester sends them; the
//! split is needed only to ask, for a statement that answered no rows, whether it returns rows at all
//! (a `SELECT` answering none still prints its header).

/// The statements of `sql`, trimmed, without empty ones.
pub(crate) fn statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b';' => {
                push(&mut out, &sql[start..i]);
                start = i + 1;
                i += 1;
            }
            b'\'' => {
                let escapes = i > 0 && matches!(bytes[i - 1], b'E' | b'e') && !ident_byte(bytes, i.wrapping_sub(2));
                i = skip_quoted(bytes, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i, b'"', false),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            b'$' if i == 0 || !ident_byte(bytes, i - 1) => i = skip_dollar(sql, i),
            _ => i += 1,
        }
    }
    push(&mut out, &sql[start..]);
    out
}

fn push<'a>(out: &mut Vec<&'a str>, statement: &'a str) {
    let statement = statement.trim();
    if !statement.is_empty() {
        out.push(statement);
    }
}

/// Whether the byte at `i` (if any) can be part of an identifier.
fn ident_byte(bytes: &[u8], i: usize) -> bool {
    bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b >= 0x80)
}

/// The index after the quoted text starting at `open` (a doubled quote is one quote).
fn skip_quoted(bytes: &[u8], open: usize, quote: u8, backslash_escapes: bool) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if backslash_escapes && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

fn skip_block_comment(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0;
    let mut i = open;
    while i + 1 < bytes.len() {
        if bytes[i] == b'/' && bytes[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// After a dollar-quoted string starting at `open`, or just after the `$` when it starts none
/// (a parameter such as `$1`).
fn skip_dollar(sql: &str, open: usize) -> usize {
    let rest = &sql[open + 1..];
    let tag_len = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b >= 0x80).count();
    if rest.as_bytes().get(tag_len) != Some(&b'$') || rest.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return open + 1;
    }
    let tag = &sql[open..open + tag_len + 2];
    let body = open + tag.len();
    match sql[body..].find(tag) {
        Some(end) => body + end + tag.len(),
        None => sql.len(),
    }
}

/// Whether `statement` may answer rows (so an empty answer still has a header): a query, or a
/// change with `RETURNING`. Others (`UPDATE`, `BEGIN`, `SET` ...) answer none, never a header.
pub(crate) fn may_return_rows(statement: &str) -> bool {
    let first = statement.split(|c: char| !c.is_ascii_alphabetic()).find(|w| !w.is_empty()).unwrap_or("");
    let upper = first.to_ascii_uppercase();
    matches!(upper.as_str(), "SELECT" | "WITH" | "VALUES" | "TABLE" | "SHOW" | "FETCH" | "EXPLAIN" | "EXECUTE")
        || statement.to_ascii_uppercase().contains("RETURNING")
}

#[cfg(test)]
mod tests {
    use super::{may_return_rows, statements};

    #[test]
    fn semicolons_inside_quotes_dollar_quotes_and_comments_do_not_split() {
        let sql = "SELECT ';' AS a; DO $$ BEGIN RAISE NOTICE 'x;y'; END $$; SELECT \"a;b\" FROM t -- c;\n; \
                   /* a; /* b; */ c; */ SELECT E'\\';' ; SELECT $1";
        assert_eq!(
            statements(sql),
            vec![
                "SELECT ';' AS a",
                "DO $$ BEGIN RAISE NOTICE 'x;y'; END $$",
                "SELECT \"a;b\" FROM t -- c;",
                "/* a; /* b; */ c; */ SELECT E'\\';'",
                "SELECT $1",
            ]
        );
        assert_eq!(statements(" ; ;"), Vec::<&str>::new());
        assert_eq!(statements("SELECT $tag$ a; $ b $tag$"), vec!["SELECT $tag$ a; $ b $tag$"]);
    }

    #[test]
    fn only_queries_and_returning_changes_may_answer_rows() {
        assert!(may_return_rows("SELECT 1"));
        assert!(may_return_rows("(SELECT 1)"));
        assert!(may_return_rows("with x as (select 1) select * from x"));
        assert!(may_return_rows("UPDATE t SET v = 1 RETURNING v"));
        assert!(!may_return_rows("UPDATE t SET v = 1"));
        assert!(!may_return_rows("BEGIN ISOLATION LEVEL SERIALIZABLE"));
        assert!(!may_return_rows("COMMIT"));
    }
}
