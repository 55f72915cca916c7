//! `racelab matrix` as a user runs it on one database: the document shows the naive read-check-write
//! (the counter's read-then-write first) breaking each invariant at the database's weakest level and every safe strategy holding at every
//! level, measured in this run (nothing in the document is written by hand).

use racelab_core::Backend;
use racelab_testkit::{TestDb, on_every_backend};

use crate::support::binary::{run, text};

async fn the_matrix_shows_the_naive_race_and_the_fixes_that_hold(test: TestDb) {
    let flag = match test.backend {
        Backend::Postgres => "--postgres",
        Backend::MySql => "--mariadb",
        Backend::Sqlite => "--sqlite",
    };
    let args = ["matrix", "-w", "3", "-n", "2", flag, &test.url];
    let output = run(args.iter().map(|a| a.to_string()).collect()).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let document = text(&output.stdout);
    // The counter comes first, its strategies through the workloads' runner.
    assert!(document.split("\n## ").nth(1).is_some_and(|s| s.starts_with("`counter`")), "{document}");
    for (heading, naive_broke, safe) in [
        (
            "## `counter`: no-lost-update",
            "| `naive` (unsafe) | **✗",
            "`atomic`, `pessimistic`, `pessimistic-nowait`, `pessimistic-skip-locked`, `optimistic`, `versioned`, \
             `serializable`",
        ),
        (
            "## `stock`: no-oversell",
            "| `naive` (unsafe) | **✗",
            "`conditional`, `pessimistic`, `optimistic`, `serializable`, `check-constraint`",
        ),
        (
            "## `transfer`: money-conserved",
            "| `naive` (unsafe) | **✗",
            "`pessimistic`, `conditional`, `optimistic`, `serializable`",
        ),
    ] {
        let section = document.split(heading).nth(1).unwrap_or_else(|| panic!("no {heading} in\n{document}"));
        let section = section.split("\n## ").next().unwrap_or(section);
        // The first column is the database's weakest level: the race gets through there.
        assert!(section.contains(naive_broke), "{heading}: naive held at the weakest level?\n{section}");
        let held = section.lines().find(|l| l.contains("held at every level")).unwrap_or_else(|| panic!("{section}"));
        assert!(held.contains(safe), "{heading}: {held}");
        // SQLite has no application locks: `advisory` is a cell that says it did not run.
        let unsupported = |row: &&str| test.backend == Backend::Sqlite && row.starts_with("| `advisory` |");
        let safe_rows = section.lines().filter(|l| l.starts_with("| `") && !l.contains("(unsafe)"));
        for row in safe_rows.filter(|row| !unsupported(row)) {
            assert!(!row.contains('✗') && !row.contains("not run"), "{heading}: a safe strategy broke: {row}");
        }
    }
    if test.backend == Backend::MySql {
        assert!(document.contains("Maria+SI rr"), "MariaDB runs with snapshot isolation too:\n{document}");
    }
}
on_every_backend!(the_matrix_shows_the_naive_race_and_the_fixes_that_hold);

#[tokio::test]
async fn the_matrix_needs_a_database() {
    let output = run(vec!["matrix".to_owned()]).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("give at least one of --postgres, --mariadb, --sqlite, --galera"));
}
