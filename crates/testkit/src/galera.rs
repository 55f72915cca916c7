//! A database of its own for every test on a MariaDB Galera cluster, one URL per node.
//!
//! The shared cluster is the one `scripts/galera up` starts (client ports 3311–3313); point the tests
//! elsewhere with `RACELAB_TEST_GALERA_URLS` (comma-separated, node 1 first). A cluster that cannot be
//! reached fails the test with the URLs tried and the command that starts it: nothing is skipped.
//!
//! Tests that kill or desync nodes use [`PrivateCluster`] instead: a second cluster
//! (`RACELAB_GALERA_CLUSTER=private scripts/galera`), started on demand and held by one test at a time,
//! so the tests on the shared cluster are never disturbed.

use std::path::PathBuf;
use std::time::Duration;

use racelab_core::db::redact;
use racelab_core::{ConnectOptions, Database, DatabaseUrl};
use sqlx::{AssertSqlSafe, Connection, Executor, MySqlConnection};

const URLS_VAR: &str = "RACELAB_TEST_GALERA_URLS";
const URLS_DEFAULT: &str =
    "mysql://root@127.0.0.1:3311/test,mysql://root@127.0.0.1:3312/test,mysql://root@127.0.0.1:3313/test";
/// How long a node may take to show a database created on another one.
const SYNC_DEADLINE: Duration = Duration::from_secs(30);

/// `scripts/galera` of this checkout.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/galera")
}

/// The shared cluster's node URLs (admin URLs: they name the `test` database).
pub fn shared_urls() -> Vec<String> {
    let urls = std::env::var(URLS_VAR).unwrap_or_else(|_| URLS_DEFAULT.to_owned());
    urls.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect()
}

/// A freshly created, empty database on every node of a cluster, dropped with this value.
pub struct GaleraDb {
    /// One URL per node, in node order, each naming this test's database (tests only: no secrets).
    pub urls: Vec<String>,
    admin_urls: Vec<String>,
    name: String,
}

impl GaleraDb {
    /// A database of its own on the shared cluster.
    pub async fn create() -> Self {
        Self::create_on(shared_urls(), &format!("start it with `scripts/galera up`, or set {URLS_VAR}")).await
    }

    /// Creates the database through node 1 and waits until every node sees it.
    async fn create_on(admin_urls: Vec<String>, hint: &str) -> Self {
        assert!(!admin_urls.is_empty(), "no Galera node URLs; {hint}");
        let name = format!("racelab_g_{}", uuid::Uuid::new_v4().simple());
        let mut nodes = Vec::with_capacity(admin_urls.len());
        for url in &admin_urls {
            nodes.push(node_connection(url, &admin_urls, hint).await);
        }
        nodes[0]
            .execute(sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}"))))
            .await
            .expect("CREATE DATABASE");
        let urls = admin_urls.iter().map(|u| super::replace_database(u, &name)).collect();
        let db = Self { urls, admin_urls, name };
        for (node, conn) in nodes.iter_mut().enumerate() {
            db.wait_visible(node, conn).await;
        }
        db
    }

    /// `wsrep_sync_wait` makes the read wait until the node has applied every write certified before
    /// it, the CREATE DATABASE included; the poll only guards against a node that is still joining.
    async fn wait_visible(&self, node: usize, conn: &mut MySqlConnection) {
        let deadline = tokio::time::Instant::now() + SYNC_DEADLINE;
        loop {
            let found: Option<String> =
                sqlx::query_scalar("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?")
                    .bind(&self.name)
                    .fetch_optional(&mut *conn)
                    .await
                    .unwrap_or_else(|e| panic!("node {}: looking for {}: {e}", node + 1, self.name));
            if found.is_some() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {} ({}) does not show database {} after {SYNC_DEADLINE:?}",
                node + 1,
                redact(&self.admin_urls[node]),
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many nodes the cluster has.
    pub fn nodes(&self) -> usize {
        self.urls.len()
    }

    /// Connect options for node `node` (0-based): a pool for 32 workers, short timeouts.
    pub fn options(&self, node: usize) -> ConnectOptions {
        let mut options = ConnectOptions::new(DatabaseUrl::parse(&self.urls[node]).expect("test URL parses"));
        options.max_connections = 40;
        options.acquire_timeout = Duration::from_secs(20);
        options
    }

    /// Connects to node `node` (0-based) and applies the migrations.
    pub async fn connect(&self, node: usize) -> Database {
        Database::connect(self.options(node))
            .await
            .unwrap_or_else(|e| panic!("connecting to node {} of the test cluster: {e}", node + 1))
    }

    /// One plain connection to node `node` (0-based) that reads with `wsrep_sync_wait = 1`: it sees
    /// every write the cluster certified before the read, whichever node made it.
    pub async fn synced_connection(&self, node: usize) -> MySqlConnection {
        let mut conn = MySqlConnection::connect(&self.urls[node])
            .await
            .unwrap_or_else(|e| panic!("connecting to node {}: {e}", node + 1));
        conn.execute("SET SESSION wsrep_sync_wait = 1").await.expect("SET wsrep_sync_wait");
        conn
    }

    /// `like` of post `pk` as node `node` (0-based) holds it once it has applied every earlier write.
    pub async fn synced_like(&self, node: usize, pk: i64) -> i64 {
        let mut conn = self.synced_connection(node).await;
        sqlx::query_scalar("SELECT `like` FROM posts WHERE pk = ?")
            .bind(pk)
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("reading post {pk} on node {}: {e}", node + 1))
    }
}

impl Drop for GaleraDb {
    fn drop(&mut self) {
        let (admin_urls, name) = (self.admin_urls.clone(), self.name.clone());
        // As TestDb: clean up on a runtime of our own, in a thread of our own, and wait for it.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            match runtime {
                Ok(runtime) => runtime.block_on(drop_database(&admin_urls, &name)),
                Err(err) => eprintln!("racelab-testkit: cannot clean up: {err}"),
            }
        });
        if cleanup.join().is_err() {
            eprintln!("racelab-testkit: dropping the Galera test database {} failed; see above", self.name);
        }
    }
}

/// Drops through the first node that answers (a test may leave one killed); DDL replicates to the rest.
async fn drop_database(admin_urls: &[String], name: &str) {
    for url in admin_urls {
        if MySqlConnection::connect(url).await.is_err() {
            continue;
        }
        for node in admin_urls {
            super::kill_mysql_sessions(node, name).await;
        }
        let mut conn = MySqlConnection::connect(url).await.unwrap_or_else(|e| panic!("{e}"));
        conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))))
            .await
            .unwrap_or_else(|e| panic!("dropping {name} through {}: {e}", redact(url)));
        return;
    }
    panic!(
        "no node of {} answers: cannot drop {name}",
        admin_urls.iter().map(|u| redact(u)).collect::<Vec<_>>().join(", ")
    );
}

/// A connection to one node, checked to be a Galera node: tests pointed at a plain server would prove
/// nothing about a cluster.
async fn node_connection(url: &str, all: &[String], hint: &str) -> MySqlConnection {
    let urls = all.iter().map(|u| redact(u)).collect::<Vec<_>>().join(", ");
    let mut conn = MySqlConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("cannot reach the Galera test cluster at {} ({e}); cluster: {urls}; {hint}", redact(url))
    });
    let wsrep: i64 = sqlx::query_scalar("SELECT CAST(@@wsrep_on AS SIGNED)").fetch_one(&mut conn).await.unwrap_or(0);
    assert_eq!(wsrep, 1, "{} is not a Galera node (wsrep_on is off); cluster: {urls}; {hint}", redact(url));
    conn.execute("SET SESSION wsrep_sync_wait = 1").await.expect("SET wsrep_sync_wait");
    conn
}

/// The private cluster, held by one test at a time (a file lock), for tests that kill, desync or
/// rejoin nodes. It is started (or repaired, after an earlier test left it broken) when taken.
pub struct PrivateCluster {
    /// Node 1 first, naming the `test` database.
    pub admin_urls: Vec<String>,
    _held: std::fs::File,
}

impl PrivateCluster {
    const ENV: (&str, &str) = ("RACELAB_GALERA_CLUSTER", "private");

    /// Waits for the cluster to be free, then brings it up (3 Synced nodes).
    pub async fn take() -> Self {
        let held = tokio::task::spawn_blocking(|| {
            let root = script().parent().and_then(|p| p.parent()).expect("checkout root").join(".galera");
            std::fs::create_dir_all(&root).expect("creating .galera");
            let file = std::fs::File::create(root.join("private.tests.lock")).expect("creating the lock file");
            file.lock().expect("locking the private cluster");
            file
        })
        .await
        .expect("lock task");
        let cluster = Self { admin_urls: Vec::new(), _held: held };
        cluster.run(&["up"]).await;
        let urls = cluster.run(&["urls"]).await;
        Self { admin_urls: urls.lines().map(str::to_owned).collect(), ..cluster }
    }

    /// Runs `scripts/galera <args>` on the private cluster; panics with its output if it fails.
    pub async fn run(&self, args: &[&str]) -> String {
        let output = tokio::process::Command::new(script())
            .args(args)
            .env(Self::ENV.0, Self::ENV.1)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("running scripts/galera: {e}"));
        let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(
            output.status.success(),
            "`RACELAB_GALERA_CLUSTER=private scripts/galera {}` failed ({}):\n{stderr}{stdout}",
            args.join(" "),
            output.status
        );
        stdout.into_owned()
    }

    /// A database of its own on this cluster.
    pub async fn database(&self) -> GaleraDb {
        GaleraDb::create_on(self.admin_urls.clone(), "start it with `RACELAB_GALERA_CLUSTER=private scripts/galera up`")
            .await
    }

    /// `kill -9` of node `node` (0-based).
    pub async fn kill(&self, node: usize) {
        self.run(&["kill", &(node + 1).to_string()]).await;
    }

    /// Restarts node `node` (0-based) from its recovered position; returns when it is Synced.
    pub async fn rejoin(&self, node: usize) {
        self.run(&["rejoin", &(node + 1).to_string()]).await;
    }
}
