//! A database of its own for every test on the PostgreSQL high-availability cluster `scripts/pgha`
//! starts (a primary and two streaming replicas under Patroni, ports 5441–5443), and the script's
//! commands for the tests that fail its primary over.
//!
//! Point the tests elsewhere with `RACELAB_TEST_PGHA_URL` (a multi-host URL, as `scripts/pgha url`
//! prints it). A cluster that cannot be reached fails the test with the command that starts it:
//! nothing is skipped. The tests that change the cluster (kill, switch over, change the replication
//! mode) run one at a time: nextest's `pgha` group.

use std::path::PathBuf;

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

const URL_VAR: &str = "RACELAB_TEST_PGHA_URL";
const URL_DEFAULT: &str =
    "postgres://postgres@127.0.0.1:5441,127.0.0.1:5442,127.0.0.1:5443/postgres?target_session_attrs=read-write";

/// `scripts/pgha` of this checkout.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pgha")
}

/// Runs `scripts/pgha args...` to its end; its standard output, trimmed. Panics with its standard error
/// when it fails.
pub async fn run(args: &[&str]) -> String {
    let output = tokio::process::Command::new(script())
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("scripts/pgha {}: {e}", args.join(" ")));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "scripts/pgha {} failed: {stderr}", args.join(" "));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The cluster's multi-host URL (its `postgres` database).
pub fn cluster_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| URL_DEFAULT.to_owned())
}

/// The `host:port` of each node, in the URL's order.
pub fn node_addresses() -> Vec<String> {
    let url = cluster_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, hosts)| hosts);
    hosts.split(',').map(str::to_owned).collect()
}

/// A URL of node `n` (from 1) alone, naming database `name`.
pub fn node_url(n: usize, name: &str) -> String {
    let address = &node_addresses()[n - 1];
    format!("postgres://postgres@{address}/{name}")
}

/// The node that is the writable primary now (from 1), once there is one (the script waits, bounded).
pub async fn primary() -> usize {
    let n = run(&["wait-primary"]).await;
    n.parse().unwrap_or_else(|_| panic!("scripts/pgha wait-primary printed `{n}`"))
}

/// The nodes that are not the primary now (from 1).
pub async fn replicas() -> Vec<usize> {
    let primary = primary().await;
    (1..=node_addresses().len()).filter(|n| *n != primary).collect()
}

/// A freshly created, empty database on the cluster, dropped with this value (on whichever node is
/// the primary then).
pub struct PghaDb {
    /// The multi-host URL naming this test's database (tests only: no secret).
    pub url: String,
    name: String,
}

impl PghaDb {
    /// Creates the database on the primary; the replicas have it once they replay it.
    pub async fn create() -> Self {
        let name = super::new_name(std::time::SystemTime::now());
        execute_on_primary(&format!("CREATE DATABASE {name}")).await;
        Self { url: super::replace_database(&cluster_url(), &name), name }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This database on node `n` (from 1) alone.
    pub fn node_url(&self, n: usize) -> String {
        node_url(n, &self.name)
    }
}

impl Drop for PghaDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let cleanup =
            std::thread::spawn(move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime.block_on(execute_on_primary(&sql)),
                Err(err) => eprintln!("racelab-testkit: cannot clean up: {err}"),
            });
        if cleanup.join().is_err() {
            eprintln!("racelab-testkit: dropping the pgha test database {} failed; see above", self.name);
        }
    }
}

async fn execute_on_primary(sql: &str) {
    let url = node_url(primary().await, "postgres");
    let mut conn = PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!("cannot connect to the pgha cluster's primary ({url}): {e}; start it with `scripts/pgha up`, or set {URL_VAR}")
    });
    conn.execute(sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}
