//! The anomaly matrix across the nodes of a 3-node MariaDB Galera cluster (`scripts/galera up`; see
//! `racelab_testkit::galera`): T1 on node 1, T2 on node 2, T3 on node 3. Locks are local to a node, so
//! nothing waits; what certification refuses shows as a deadlock error (1213) of the transaction whose
//! write set lost, at a fixed step because the runner waits for every node to apply each commit.
//!
//! ```sh
//! scripts/galera up && cargo nextest run -p racelab-core --test engine anomalies_galera::
//! ```

use std::time::Duration;

use racelab_core::DatabaseUrl;
use racelab_core::anomalies::{self, Case, Level};
use racelab_testkit::galera::GaleraDb;

use crate::support::anomaly_token::token;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn galera_matrix_across_nodes() {
    let test = GaleraDb::create().await;
    assert_eq!(test.urls.len(), 3, "a 3-node cluster: {:?}", test.urls);
    let urls: Vec<DatabaseUrl> = test.urls.iter().map(|u| DatabaseUrl::parse(u).unwrap()).collect();
    let levels = Level::of(racelab_core::Backend::MySql);
    let matrix = anomalies::run_cases(&urls, Duration::from_secs(5), levels, &Case::ALL).await.unwrap();
    let (d6, d7, d8, d9) = ("P deadlock@6", "P deadlock@7", "P deadlock@8", "P deadlock@9");
    #[rustfmt::skip]
    let expected: [(Case, [&str; 5]); 16] = [
        //                        RU     RC     RR     RR+SI  SER
        (Case::G0,               [d7,    d7,    d7,    d7,    d7]),
        (Case::G1a,              ["P",   "P",   "P",   "P",   "P"]),
        (Case::G1b,              ["P",   "P",   "P",   "P",   d7]),
        (Case::G1c,              ["P",   "P",   "P",   "P",   d8]),
        (Case::Otv,              [d9,    d9,    d9,    d9,    d9]),
        (Case::Pmp,              ["A",   "A",   "P",   "P",   d6]),
        (Case::PmpWrite,         [d7,    d7,    d7,    d7,    d7]),
        (Case::P4,               [d8,    d8,    d8,    d8,    d8]),
        (Case::GSingle,          ["A",   "A",   "P",   "P",   d9]),
        (Case::GSingleWrite,     ["A",   "A",   "A",   "P serialization_failure@8", d8]),
        (Case::G2Item,           ["A",   "A",   "A",   "A",   d8]),
        (Case::G2,               ["A",   "A",   "A",   "A",   d8]),
        // Disjoint write sets certify. At serializable, T2's write set, applied on T1's node, aborts
        // T1 for its shared lock on row 2: T1's write fails.
        (Case::G2Fekete,         ["A",   "A",   "A",   "A",   d9]),
        (Case::P4Increment,      [d8,    d8,    d8,    d8,    d8]),
        (Case::ReadThenWrite,    [d8,    d8,    d8,    d8,    d8]),
        // MDEV-38977: a write after the other node's commit certifies, whatever it read before.
        (Case::ReadThenWriteLate, ["A",  "A",   "A",   "P serialization_failure@7", "P deadlock@7"]),
    ];
    let mut wrong = Vec::new();
    for (i, column) in matrix.columns.iter().enumerate() {
        assert!(column.unavailable.is_none(), "{}: {:?}", column.name, column.unavailable);
        for (cell, (case, row)) in column.cells.iter().zip(&expected) {
            assert_eq!(cell.case, *case);
            if token(cell) != row[i] {
                wrong.push(format!("{case} at {}: {} (expected {})", column.name, token(cell), row[i]));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Where the cluster differs from one InnoDB server as Hermitage published it: certification lets
    // neither the dirty reads of read uncommitted (each node sees only its own writes) nor the lost
    // update through across nodes.
    let mut differences: Vec<String> = matrix.differences().map(|(l, c)| format!("{} at {l}", c.case)).collect();
    differences.sort();
    assert_eq!(
        differences,
        [
            "G1a at read uncommitted",
            "G1b at read uncommitted",
            "G1c at read uncommitted",
            "OTV at read uncommitted",
            "P4 at read committed",
            "P4 at read uncommitted",
            "P4 at repeatable read",
            "PMP-write at read committed",
            "PMP-write at repeatable read",
        ]
    );
}
