//! The project's spec files (`specs/`) run through PostgreSQL 15's own isolationtester and through
//! racelab's runner, each on a database of its own, and the two outputs compared byte for byte.
//!
//! isolationtester ships in Debian's `postgresql-server-dev-15`; `scripts/test` installs it when
//! missing. Without it these tests fail, saying so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use racelab_core::spec::{self, DEFAULT_STEP_TIMEOUT, isolationtester};
use racelab_core::{Backend, DatabaseUrl};
use racelab_testkit::TestDb;

/// Where Debian's package puts PostgreSQL 15's isolationtester.
pub const ISOLATIONTESTER: &str = "/usr/lib/postgresql/15/lib/pgxs/src/test/isolation/isolationtester";

fn spec_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs").join(name)
}

/// What isolationtester prints on stdout for the spec at `path`, run on `url` (a libpq URI).
fn isolationtester_output(path: &Path, url: &str) -> String {
    assert!(
        Path::new(ISOLATIONTESTER).exists(),
        "{ISOLATIONTESTER} is missing: apt-get install postgresql-server-dev-15 (scripts/test does)"
    );
    let input = std::fs::File::open(path).unwrap();
    let output = Command::new(ISOLATIONTESTER).arg(url).stdin(input).stderr(Stdio::piped()).output().unwrap();
    assert!(output.status.success(), "isolationtester failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The first line at which `ours` and `theirs` differ, with a few lines around it.
fn first_difference(ours: &str, theirs: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (ours.split('\n').collect(), theirs.split('\n').collect());
    let at = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(3);
    format!(
        "first difference at line {}\n--- racelab\n{}\n--- isolationtester\n{}",
        at + 1,
        a[from..(at + 3).min(a.len())].join("\n"),
        b[from..(at + 3).min(b.len())].join("\n")
    )
}

async fn assert_identical(name: &str) {
    let path = spec_path(name);
    let spec = spec::parse_file(&path).unwrap();
    let theirs = {
        let test = TestDb::create(Backend::Postgres).await;
        isolationtester_output(&path, &test.url)
    };
    let test = TestDb::create(Backend::Postgres).await;
    let url = DatabaseUrl::parse(&test.url).unwrap();
    let outcome = spec::run(&url, &spec, &spec.permutations(), DEFAULT_STEP_TIMEOUT).await.unwrap();
    assert_eq!(outcome.stopped, None);
    let ours = isolationtester::render(&outcome.run);
    assert!(ours == theirs, "{name}: {}", first_difference(&ours, &theirs));
}

macro_rules! identical {
    ($($test:ident => $file:literal,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            assert_identical($file).await;
        }
    )*};
}

identical! {
    spec_blocking_is_byte_identical => "blocking.spec",
    spec_deadlock_is_byte_identical => "deadlock.spec",
    spec_notices_is_byte_identical => "notices.spec",
    spec_nowait_is_byte_identical => "nowait.spec",
    spec_row_lock_is_byte_identical => "row-lock.spec",
    spec_skip_locked_is_byte_identical => "skip-locked.spec",
    spec_three_sessions_is_byte_identical => "three-sessions.spec",
    spec_hermitage_lost_update_is_byte_identical => "hermitage/lost-update.spec",
    spec_hermitage_read_skew_is_byte_identical => "hermitage/read-skew.spec",
    spec_hermitage_write_skew_is_byte_identical => "hermitage/write-skew.spec",
    spec_hermitage_g0_is_byte_identical => "hermitage/g0.spec",
    spec_hermitage_g1a_is_byte_identical => "hermitage/g1a.spec",
    spec_hermitage_g1b_is_byte_identical => "hermitage/g1b.spec",
    spec_hermitage_g1c_is_byte_identical => "hermitage/g1c.spec",
    spec_hermitage_otv_is_byte_identical => "hermitage/otv.spec",
    spec_hermitage_pmp_is_byte_identical => "hermitage/pmp.spec",
    spec_hermitage_pmp_write_is_byte_identical => "hermitage/pmp-write.spec",
    spec_hermitage_p4_is_byte_identical => "hermitage/p4.spec",
    spec_hermitage_g_single_is_byte_identical => "hermitage/g-single.spec",
    spec_hermitage_g_single_write_is_byte_identical => "hermitage/g-single-write.spec",
    spec_hermitage_g2_item_is_byte_identical => "hermitage/g2-item.spec",
    spec_hermitage_g2_is_byte_identical => "hermitage/g2.spec",
    spec_hermitage_g2_fekete_is_byte_identical => "hermitage/g2-fekete.spec",
    spec_hermitage_p4_increment_is_byte_identical => "hermitage/p4-increment.spec",
    spec_hermitage_read_then_write_is_byte_identical => "hermitage/read-then-write.spec",
    spec_hermitage_read_then_write_late_is_byte_identical => "hermitage/read-then-write-late.spec",
}

/// Every spec file of the repository has its test above: a new file without one fails here.
#[test]
fn spec_files_all_have_a_differential_test() {
    let source = include_str!("spec_isolationtester.rs");
    let mut missing = Vec::new();
    let root = spec_path("");
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "spec") {
                let name = path.strip_prefix(&root).unwrap().display().to_string();
                if !source.contains(&format!("\"{name}\"")) {
                    missing.push(name);
                }
            }
        }
    }
    assert!(missing.is_empty(), "spec files without a differential test: {missing:?}");
}
