//! The tokens of a spec file, as PostgreSQL's `specscanner.l` cuts them: keywords, names (bare or
//! in double quotes), `{ SQL }` blocks, integers, `( ) , *`; `#` comments and white space skipped.
//!
//! A SQL block runs to the first `}`: like isolationtester's, it cannot hold one. The spaces and tabs
//! just inside its braces are dropped, its newlines kept (isolationtester prints a step's SQL so).

use super::parse::{ParseError, Position};

/// One token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Kind,
    pub at: Position,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Keyword(Keyword),
    /// A bare identifier or a double-quoted string: both name things.
    Name(String),
    Sql(String),
    Integer(u32),
    Open,
    Close,
    Comma,
    Star,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    Notices,
    Permutation,
    Session,
    Setup,
    Step,
    Teardown,
}

impl Keyword {
    fn of(word: &str) -> Option<Keyword> {
        Some(match word {
            "notices" => Keyword::Notices,
            "permutation" => Keyword::Permutation,
            "session" => Keyword::Session,
            "setup" => Keyword::Setup,
            "step" => Keyword::Step,
            "teardown" => Keyword::Teardown,
            _ => return None,
        })
    }

    pub(crate) fn word(self) -> &'static str {
        match self {
            Keyword::Notices => "notices",
            Keyword::Permutation => "permutation",
            Keyword::Session => "session",
            Keyword::Setup => "setup",
            Keyword::Step => "step",
            Keyword::Teardown => "teardown",
        }
    }
}

impl Kind {
    /// How an error message names the token.
    pub(crate) fn describe(&self) -> String {
        match self {
            Kind::Keyword(k) => format!("keyword `{}`", k.word()),
            Kind::Name(n) => format!("name `{n}`"),
            Kind::Sql(_) => "a `{ SQL }` block".to_owned(),
            Kind::Integer(n) => format!("number {n}"),
            Kind::Open => "`(`".to_owned(),
            Kind::Close => "`)`".to_owned(),
            Kind::Comma => "`,`".to_owned(),
            Kind::Star => "`*`".to_owned(),
        }
    }
}

/// Spaces inside a SQL block's braces that are dropped (not newlines: flex's `{space}`).
fn is_inline_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0c')
}

/// Starts an identifier: a letter, `_`, or any non-ASCII character (flex's `\200-\377` bytes).
fn starts_ident(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn continues_ident(c: char) -> bool {
    starts_ident(c) || c.is_ascii_digit() || c == '$'
}

struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    column: usize,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn at(&self) -> Position {
        Position { line: self.line, column: self.column }
    }
}

/// Cuts `text` into tokens; the first character no token can start with is an error at its place.
pub(crate) fn tokens(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut cursor = Cursor { chars: text.chars().peekable(), line: 1, column: 1 };
    let mut out = Vec::new();
    while let Some(c) = cursor.peek() {
        let at = cursor.at();
        let kind = match c {
            c if c.is_whitespace() => {
                cursor.bump();
                continue;
            }
            '#' => {
                while cursor.peek().is_some_and(|c| c != '\n') {
                    cursor.bump();
                }
                continue;
            }
            '"' => {
                cursor.bump();
                let mut name = String::new();
                loop {
                    match cursor.bump() {
                        Some('"') => break,
                        Some('\n') => return Err(ParseError::at(at, "newline in a quoted name")),
                        Some(c) => name.push(c),
                        None => return Err(ParseError::at(at, "quoted name not closed")),
                    }
                }
                Kind::Name(name)
            }
            '{' => {
                cursor.bump();
                let mut sql = String::new();
                loop {
                    match cursor.bump() {
                        Some('}') => break,
                        Some(c) => sql.push(c),
                        None => return Err(ParseError::at(at, "SQL block not closed: no `}` before the end")),
                    }
                }
                let sql = sql.trim_start_matches(is_inline_space).trim_end_matches(is_inline_space);
                Kind::Sql(sql.to_owned())
            }
            '(' | ')' | ',' | '*' => {
                cursor.bump();
                match c {
                    '(' => Kind::Open,
                    ')' => Kind::Close,
                    ',' => Kind::Comma,
                    _ => Kind::Star,
                }
            }
            c if c.is_ascii_digit() => {
                let mut digits = String::new();
                while let Some(d) = cursor.peek().filter(char::is_ascii_digit) {
                    digits.push(d);
                    cursor.bump();
                }
                let n = digits.parse().map_err(|_| ParseError::at(at, format!("number {digits} is too large")))?;
                Kind::Integer(n)
            }
            c if starts_ident(c) => {
                let mut word = String::new();
                while let Some(d) = cursor.peek().filter(|&d| continues_ident(d)) {
                    word.push(d);
                    cursor.bump();
                }
                Keyword::of(&word).map_or(Kind::Name(word), Kind::Keyword)
            }
            other => return Err(ParseError::at(at, format!("unexpected character {other:?}"))),
        };
        out.push(Token { kind, at });
    }
    Ok(out)
}
