//! The parser and the enumeration of permutations, on texts written here.

use super::model::{Blocker, StepRef};
use super::{count_permutations, parse, parse_permutation};

const TWO_SESSIONS: &str = r#"
# a comment line
setup { CREATE TABLE t (id int PRIMARY KEY, v int); }
setup
{
  INSERT INTO t VALUES (1, 10);
}
teardown { DROP TABLE t; }

session s1
setup { BEGIN; }
step r1 { SELECT v FROM t; }   # a comment after a step
step "w 1" { UPDATE t SET v = 11; }
teardown { ROLLBACK; }

session "s2"
step w2 { UPDATE t SET v = 12; }
step c2 { COMMIT; }

permutation r1 "w 1" w2(*) c2
permutation w2 r1(w2) "w 1"(w2 notices 2, *) c2
"#;

#[test]
fn a_whole_spec_is_read_with_every_part_in_its_place() {
    let spec = parse(TWO_SESSIONS).unwrap();
    assert_eq!(spec.setups, vec!["CREATE TABLE t (id int PRIMARY KEY, v int);", "\n  INSERT INTO t VALUES (1, 10);\n"]);
    assert_eq!(spec.teardown.as_deref(), Some("DROP TABLE t;"));
    assert_eq!(spec.sessions.len(), 2);
    assert_eq!(spec.sessions[0].name, "s1");
    assert_eq!(spec.sessions[0].setup.as_deref(), Some("BEGIN;"));
    assert_eq!(spec.sessions[0].teardown.as_deref(), Some("ROLLBACK;"));
    let names: Vec<&str> = spec.sessions[0].steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["r1", "w 1"]);
    assert_eq!(spec.sessions[1].name, "s2");
    assert_eq!(spec.sessions[1].steps[1].sql, "COMMIT;");
    assert_eq!(spec.permutations.len(), 2);
    assert_eq!(spec.permutations[0].names(), "r1 w 1 w2 c2");
    assert_eq!(spec.permutations[0].steps[2].blockers, vec![Blocker::Once]);
    let second = &spec.permutations[1];
    assert_eq!(
        second.steps[1].blockers,
        vec![Blocker::Step { name: "w2".into(), step: StepRef { session: 1, index: 0 } }]
    );
    assert_eq!(
        second.steps[2].blockers,
        vec![Blocker::Notices { name: "w2".into(), step: StepRef { session: 1, index: 0 }, count: 2 }, Blocker::Once]
    );
    assert!(spec.warnings.is_empty());
}

#[test]
fn errors_name_line_and_column() {
    let cases = [
        ("session s1 step a { SELECT 1 } @", (1, 32), "unexpected character '@'"),
        ("session s1\nstep a { SELECT 1 ", (2, 8), "SQL block not closed"),
        ("session s1 step a { SELECT 1 }\npermutation a(", (2, 15), "expected a step name or `*`"),
        ("setup { SELECT 1 }\nstep a { SELECT 1 }", (2, 1), "expected `setup`, `teardown` or `session`"),
        ("session s1\n  step a { SELECT 1 }\n  step a { SELECT 2 }", (3, 8), "duplicate step name: a"),
        ("session s1 step a { SELECT 1 }\npermutation b", (2, 13), "undefined step \"b\""),
        (
            "session s1 step a { SELECT 1 } session s2 step b { SELECT 2 }\npermutation a(c) b",
            (2, 15),
            "undefined blocking step \"c\"",
        ),
        (
            "session s1 step a { SELECT 1 } step x { SELECT 2 }\npermutation a(x) x",
            (2, 15),
            "cannot block on its own session",
        ),
        (
            "session s1 step a { SELECT 1 } session s2 step b { SELECT 1 }\npermutation a(b notices) b",
            (2, 24),
            "a number after `notices`",
        ),
        ("session s1 setup { BEGIN; }", (1, 28), "expected `step` (session s1 has none)"),
        ("session \"s1\nstep", (1, 9), "newline in a quoted name"),
        ("session step a { SELECT 1 }", (1, 9), "expected a session name"),
    ];
    for (text, (line, column), message) in cases {
        let err = parse(text).expect_err(text);
        assert_eq!((err.at.line, err.at.column), (line, column), "{text:?}: {err}");
        assert!(err.message.contains(message), "{text:?}: {err}");
    }
}

#[test]
fn a_step_no_permutation_uses_is_a_warning_as_in_isolationtester() {
    let spec = parse("session s1 step a { SELECT 1 } step b { SELECT 2 } permutation a").unwrap();
    assert_eq!(spec.warnings, vec!["unused step name: b"]);
}

#[test]
fn sql_keeps_its_newlines_and_loses_the_spaces_inside_its_braces() {
    let spec = parse("session s1 step a {\t SELECT 1;\n  SELECT 2; \t}").unwrap();
    assert_eq!(spec.sessions[0].steps[0].sql, "SELECT 1;\n  SELECT 2;");
    let spec = parse("session s1 step a {\n  SELECT 1;\n}").unwrap();
    assert_eq!(spec.sessions[0].steps[0].sql, "\n  SELECT 1;\n");
}

#[test]
fn without_permutations_every_interleaving_runs_in_isolationtesters_order() {
    let spec = parse("session a step a1 {} step a2 {} session b step b1 {} step b2 {}").unwrap();
    let all: Vec<String> = spec.permutations().iter().map(|p| p.names()).collect();
    assert_eq!(all, ["a1 a2 b1 b2", "a1 b1 a2 b2", "a1 b1 b2 a2", "b1 a1 a2 b2", "b1 a1 b2 a2", "b1 b2 a1 a2",]);
    let three =
        parse("session a step a1 {} step a2 {} session b step b1 {} step b2 {} session c step c1 {} step c2 {}")
            .unwrap();
    assert_eq!(three.permutations().len(), 90);
    assert_eq!(count_permutations(&three), 90);
    assert_eq!(three.permutations()[0].names(), "a1 a2 b1 b2 c1 c2");
    assert_eq!(three.permutations()[89].names(), "c1 c2 b1 b2 a1 a2");
}

#[test]
fn a_permutation_given_apart_is_checked_against_the_spec() {
    let spec = parse(TWO_SESSIONS).unwrap();
    let p = parse_permutation("w2 r1(*) c2", &spec).unwrap();
    assert_eq!(p.names(), "w2 r1 c2");
    assert_eq!(p.steps[1].blockers, vec![Blocker::Once]);
    let err = parse_permutation("w2 nope", &spec).unwrap_err();
    assert_eq!((err.at.line, err.at.column), (1, 4));
    assert!(parse_permutation("  ", &spec).is_err());
}
