//! The grammar of PostgreSQL's isolation tester (`specparse.y`) and the checks isolationtester makes
//! after parsing (unique step names, known steps and blockers, no blocker in its own session).
//!
//! ```text
//! spec        := setup* [teardown SQL] session+ permutation*
//! setup       := "setup" SQL
//! session     := "session" NAME ["setup" SQL] step+ ["teardown" SQL]
//! step        := "step" NAME SQL
//! permutation := "permutation" pstep+
//! pstep       := NAME ["(" blocker ("," blocker)* ")"]
//! blocker     := "*" | NAME | NAME "notices" INTEGER
//! ```
//!
//! Every error names the place (line and column) it was found at; [`parse_file`] adds the file.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::model::{Blocker, Permutation, PermutationStep, Session, Spec, Step, StepRef};
use super::scan::{Keyword, Kind, Token, tokens};

/// A place in a spec file, both 1-based; the column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Why a spec could not be read: what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The file, when the spec came from one.
    pub file: Option<String>,
    pub at: Position,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Position { line, column } = self.at;
        match &self.file {
            Some(file) => write!(f, "{file}:{line}:{column}: {}", self.message),
            None => write!(f, "line {line}, column {column}: {}", self.message),
        }
    }
}

impl ParseError {
    pub(crate) fn at(at: Position, message: impl Into<String>) -> Self {
        ParseError { file: None, at, message: message.into() }
    }
}

/// Why a spec file could not be used: unreadable, or not a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecFileError {
    #[error("cannot read {file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{0}")]
    Parse(#[from] ParseError),
}

/// Reads and parses the spec file at `path`; errors name the file.
pub fn parse_file(path: &Path) -> Result<Spec, SpecFileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SpecFileError::Read { file: file.clone(), source })?;
    parse(&text).map_err(|mut err| {
        err.file = Some(file);
        SpecFileError::Parse(err)
    })
}

/// Parses a spec's text.
pub fn parse(text: &str) -> Result<Spec, ParseError> {
    let tokens = tokens(text)?;
    let end = end_of(text);
    let mut parser = Parser { tokens, next: 0, end };
    let raw = parser.spec()?;
    check(raw)
}

/// Parses a permutation given apart from a file (`--permutation "a b(c) d"`), for `spec`.
pub fn parse_permutation(text: &str, spec: &Spec) -> Result<Permutation, ParseError> {
    let tokens = tokens(text)?;
    let end = end_of(text);
    let mut parser = Parser { tokens, next: 0, end };
    let mut steps = Vec::new();
    while parser.peek().is_some() {
        steps.push(parser.permutation_step()?);
    }
    if steps.is_empty() {
        return Err(ParseError::at(end, "a permutation names at least one step"));
    }
    resolve_permutation(RawPermutation { steps }, &step_index(&spec.sessions))
}

/// Where `text` ends: just after its last character.
fn end_of(text: &str) -> Position {
    let line = text.matches('\n').count() + 1;
    let last = text.rsplit('\n').next().unwrap_or("");
    Position { line, column: last.chars().count() + 1 }
}

/// A name and where it was written.
#[derive(Debug, Clone)]
struct Named {
    name: String,
    at: Position,
}

struct RawSpec {
    setups: Vec<String>,
    teardown: Option<String>,
    sessions: Vec<RawSession>,
    permutations: Vec<RawPermutation>,
}

struct RawSession {
    name: String,
    setup: Option<String>,
    steps: Vec<(Named, String)>,
    teardown: Option<String>,
}

struct RawPermutation {
    steps: Vec<(Named, Vec<RawBlocker>)>,
}

enum RawBlocker {
    Once,
    Step(Named),
    Notices(Named, u32),
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// Where the text ends, for "expected ... at the end".
    end: Position,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn peek_keyword(&self, keyword: Keyword) -> bool {
        self.peek().is_some_and(|t| t.kind == Kind::Keyword(keyword))
    }

    fn bump(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    /// An error saying what was expected where the next token is (or the text ends).
    fn expected(&self, what: &str) -> ParseError {
        match self.peek() {
            Some(t) => ParseError::at(t.at, format!("expected {what}, found {}", t.kind.describe())),
            None => ParseError::at(self.end, format!("expected {what}, found the end of the file")),
        }
    }

    fn sql(&mut self, after: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some(Token { kind: Kind::Sql(sql), .. }) => {
                let sql = sql.clone();
                self.next += 1;
                Ok(sql)
            }
            _ => Err(self.expected(&format!("a `{{ SQL }}` block after `{after}`"))),
        }
    }

    fn name(&mut self, what: &str) -> Result<Named, ParseError> {
        match self.peek() {
            Some(Token { kind: Kind::Name(name), at }) => {
                let named = Named { name: name.clone(), at: *at };
                self.next += 1;
                Ok(named)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn spec(&mut self) -> Result<RawSpec, ParseError> {
        let mut setups = Vec::new();
        while self.peek_keyword(Keyword::Setup) {
            self.bump();
            setups.push(self.sql("setup")?);
        }
        let mut teardown = None;
        if self.peek_keyword(Keyword::Teardown) {
            self.bump();
            teardown = Some(self.sql("teardown")?);
        }
        let mut sessions = Vec::new();
        while self.peek_keyword(Keyword::Session) {
            sessions.push(self.session()?);
        }
        if sessions.is_empty() {
            let what = if teardown.is_some() { "`session`" } else { "`setup`, `teardown` or `session`" };
            return Err(self.expected(what));
        }
        let mut permutations = Vec::new();
        while let Some(token) = self.peek() {
            if token.kind != Kind::Keyword(Keyword::Permutation) {
                return Err(self.expected("`session` or `permutation`"));
            }
            self.bump();
            let mut steps = vec![self.permutation_step()?];
            while matches!(self.peek(), Some(Token { kind: Kind::Name(_), .. })) {
                steps.push(self.permutation_step()?);
            }
            permutations.push(RawPermutation { steps });
        }
        Ok(RawSpec { setups, teardown, sessions, permutations })
    }

    fn session(&mut self) -> Result<RawSession, ParseError> {
        self.bump();
        let name = self.name("a session name after `session`")?.name;
        let mut setup = None;
        if self.peek_keyword(Keyword::Setup) {
            self.bump();
            setup = Some(self.sql("setup")?);
        }
        let mut steps = Vec::new();
        while self.peek_keyword(Keyword::Step) {
            self.bump();
            let step = self.name("a step name after `step`")?;
            let sql = self.sql(&format!("step {}", step.name))?;
            steps.push((step, sql));
        }
        if steps.is_empty() {
            return Err(self.expected(&format!("`step` (session {name} has none)")));
        }
        let mut teardown = None;
        if self.peek_keyword(Keyword::Teardown) {
            self.bump();
            teardown = Some(self.sql("teardown")?);
        }
        Ok(RawSession { name, setup, steps, teardown })
    }

    fn permutation_step(&mut self) -> Result<(Named, Vec<RawBlocker>), ParseError> {
        let step = self.name("a step name")?;
        let mut blockers = Vec::new();
        if self.peek().is_some_and(|t| t.kind == Kind::Open) {
            self.bump();
            loop {
                if self.peek().is_some_and(|t| t.kind == Kind::Star) {
                    self.bump();
                    blockers.push(RawBlocker::Once);
                } else {
                    let other = self.name("a step name or `*` in a blocker")?;
                    if self.peek_keyword(Keyword::Notices) {
                        self.bump();
                        match self.bump() {
                            Some(Token { kind: Kind::Integer(n), .. }) => blockers.push(RawBlocker::Notices(other, n)),
                            _ => {
                                self.next -= 1;
                                return Err(self.expected("a number after `notices`"));
                            }
                        }
                    } else {
                        blockers.push(RawBlocker::Step(other));
                    }
                }
                match self.bump() {
                    Some(Token { kind: Kind::Comma, .. }) => continue,
                    Some(Token { kind: Kind::Close, .. }) => break,
                    _ => {
                        self.next -= 1;
                        return Err(self.expected("`,` or `)` in a blocker list"));
                    }
                }
            }
        }
        Ok((step, blockers))
    }
}

/// Every step by name.
fn step_index(sessions: &[Session]) -> HashMap<String, StepRef> {
    let mut index = HashMap::new();
    for (s, session) in sessions.iter().enumerate() {
        for (i, step) in session.steps.iter().enumerate() {
            index.insert(step.name.clone(), StepRef { session: s, index: i });
        }
    }
    index
}

/// isolationtester's `check_testspec`: names resolved, each error at its place.
fn check(raw: RawSpec) -> Result<Spec, ParseError> {
    let mut seen: HashMap<String, StepRef> = HashMap::new();
    let mut sessions = Vec::with_capacity(raw.sessions.len());
    for (s, session) in raw.sessions.into_iter().enumerate() {
        let mut steps = Vec::with_capacity(session.steps.len());
        for (i, (named, sql)) in session.steps.into_iter().enumerate() {
            if seen.insert(named.name.clone(), StepRef { session: s, index: i }).is_some() {
                return Err(ParseError::at(named.at, format!("duplicate step name: {}", named.name)));
            }
            steps.push(Step { name: named.name, sql });
        }
        sessions.push(Session { name: session.name, setup: session.setup, steps, teardown: session.teardown });
    }
    let permutations =
        raw.permutations.into_iter().map(|p| resolve_permutation(p, &seen)).collect::<Result<Vec<_>, _>>()?;
    let mut warnings = Vec::new();
    if !permutations.is_empty() {
        let mut names: Vec<&String> = seen.keys().collect();
        names.sort();
        for name in names {
            if !permutations.iter().any(|p| p.steps.iter().any(|s| &s.name == name)) {
                warnings.push(format!("unused step name: {name}"));
            }
        }
    }
    Ok(Spec { setups: raw.setups, teardown: raw.teardown, sessions, permutations, warnings })
}

fn resolve_permutation(raw: RawPermutation, index: &HashMap<String, StepRef>) -> Result<Permutation, ParseError> {
    let find = |named: &Named| index.get(&named.name).copied();
    let mut steps = Vec::with_capacity(raw.steps.len());
    for (named, _) in &raw.steps {
        if find(named).is_none() {
            return Err(ParseError::at(
                named.at,
                format!("undefined step \"{}\" specified in permutation", named.name),
            ));
        }
    }
    for (named, blockers) in &raw.steps {
        let step = find(named).unwrap_or(StepRef { session: 0, index: 0 });
        let mut resolved = Vec::with_capacity(blockers.len());
        for blocker in blockers {
            let other = match blocker {
                RawBlocker::Once => {
                    resolved.push(Blocker::Once);
                    continue;
                }
                RawBlocker::Step(other) | RawBlocker::Notices(other, _) => other,
            };
            // A blocker must be a step of this same permutation.
            let in_permutation = raw.steps.iter().any(|(n, _)| n.name == other.name);
            let Some(at) = find(other).filter(|_| in_permutation) else {
                return Err(ParseError::at(
                    other.at,
                    format!(
                        "undefined blocking step \"{}\" referenced in permutation step \"{}\"",
                        other.name, named.name
                    ),
                ));
            };
            if at.session == step.session {
                return Err(ParseError::at(
                    other.at,
                    format!("permutation step \"{}\" cannot block on its own session", named.name),
                ));
            }
            resolved.push(match blocker {
                RawBlocker::Notices(_, count) => Blocker::Notices { name: other.name.clone(), step: at, count: *count },
                _ => Blocker::Step { name: other.name.clone(), step: at },
            });
        }
        steps.push(PermutationStep { name: named.name.clone(), step, blockers: resolved });
    }
    Ok(Permutation { steps })
}
