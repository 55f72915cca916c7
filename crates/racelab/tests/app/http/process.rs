//! The real binary as a child process: graceful shutdown on SIGTERM, and open files and memory that
//! stay flat over thousands of requests (the seed's logger leaked a file handle per call).

use std::process::Stdio;
use std::time::Duration;

use racelab_core::Backend;
use racelab_testkit::TestDb;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::support::service::{Raw, read_answer};

/// `racelab serve` on port 0, its log lines, and a client.
pub struct Server {
    child: Child,
    pid: u32,
    pub address: String,
    log: mpsc::UnboundedReceiver<String>,
    pub client: reqwest::Client,
}

impl Server {
    pub async fn start(database_url: &str) -> Self {
        Self::start_with_pool(database_url, 40).await
    }

    /// The server with a pool of at most `pool_size` connections.
    async fn start_with_pool(database_url: &str, pool_size: u32) -> Self {
        Self::start_with(database_url, pool_size, &[], None).await
    }

    /// The server with a pool of at most `pool_size` connections, more environment variables, and
    /// at most `open_files` descriptors (`ulimit -n`).
    pub async fn start_with(database_url: &str, pool_size: u32, env: &[(&str, &str)], open_files: Option<u32>) -> Self {
        let binary = env!("CARGO_BIN_EXE_racelab");
        let mut command = match open_files {
            Some(limit) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("ulimit -n {limit} && exec \"$0\" serve"), binary]);
                sh
            }
            None => {
                let mut racelab = Command::new(binary);
                racelab.arg("serve");
                racelab
            }
        };
        let mut child = command
            .env("DATABASE_URL", database_url)
            .env("RACELAB_POOL_SIZE", pool_size.to_string())
            .env("RACELAB_BIND", "127.0.0.1:0")
            .env("RACELAB_SHUTDOWN_GRACE", "20s")
            .env("RUST_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            // No .env of the developer's: run where there is none.
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the racelab binary starts");
        let pid = child.id().expect("pid");
        let log = crate::support::binary::stderr_lines(&mut child);
        let mut server = Self { child, pid, address: String::new(), log, client: reqwest::Client::new() };
        let line = server.wait_for_log("listening on").await;
        let port = line.rsplit(':').next().and_then(|p| p.trim().parse::<u16>().ok()).expect("port in the log");
        server.address = format!("http://127.0.0.1:{port}");
        server
    }

    /// The next log line containing `needle` (20 s at most).
    pub async fn wait_for_log(&mut self, needle: &str) -> String {
        let wait = async {
            while let Some(line) = self.log.recv().await {
                if line.contains(needle) {
                    return line;
                }
            }
            panic!("the server exited before logging `{needle}`");
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("the server did not log `{needle}` within 20 s"))
    }

    pub async fn get(&self, path: &str) -> crate::support::service::Answer {
        let response = self.client.get(format!("{}{path}", self.address)).send().await.expect(path);
        read_answer(response).await
    }

    /// Open file descriptors: (on files whose path starts with `database`, all others).
    fn open_files(&self, database: &str) -> (usize, usize) {
        let entries = std::fs::read_dir(format!("/proc/{}/fd", self.pid)).expect("/proc/<pid>/fd");
        let targets: Vec<_> = entries.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok()).collect();
        let on_database = targets.iter().filter(|t| t.to_string_lossy().starts_with(database)).count();
        (on_database, targets.len() - on_database)
    }

    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    fn terminate(&self) {
        let status =
            std::process::Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().expect("kill runs");
        assert!(status.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_in_flight_when_sigterm_arrives_completes() {
    racelab_testkit::run(Backend::Postgres, graceful_shutdown).await;
}

// The test holds post 1's row lock so the request is in flight for as long as the test wants: it
// sends SIGTERM while the request's workers wait for the lock, waits for the server to say it is
// draining, then lets the request go. The answer must be a complete 200, and the server must exit 0.
async fn graceful_shutdown(test: TestDb) {
    let mut server = Server::start(&test.url).await;
    assert_eq!(server.get("/test-db/init").await.status, 200);

    let mut holder = Raw::connect(&test).await;
    holder.hold_row_lock(1).await;
    let request = {
        let (client, url) = (server.client.clone(), format!("{}/test-db/2th-plock", server.address));
        tokio::spawn(async move { read_answer(client.get(url).send().await.expect("request")).await })
    };
    Raw::connect(&test).await.wait_for_lock_waiter().await;

    server.terminate();
    server.wait_for_log("shutdown signal received").await;
    holder.execute("COMMIT").await;

    let answer = request.await.expect("task");
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["like_result"], 50, "{}", answer.text);
    assert_eq!(answer.body["experiment"]["failed"], 0, "{}", answer.text);
    let status = tokio::time::timeout(Duration::from_secs(20), server.child.wait())
        .await
        .expect("the server exits after draining")
        .expect("wait");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_files_and_memory_stay_flat_over_2000_requests() {
    racelab_testkit::run(Backend::Sqlite, no_leaks).await;
}

async fn no_leaks(test: TestDb) {
    const POOL: usize = 4;
    let server = Server::start_with_pool(&test.url, POOL as u32).await;
    let database = test.url.trim_start_matches("sqlite://").to_owned();
    let paths = [
        "/test-db/check",
        "/test-db/2th-atomic?increments=2",
        "/test-db/test-versioning",
        "/test-db/2th-olock?increments=2",
        "/test-db/2th?workers=abc",
        "/ready",
        "/nowhere",
    ];
    let mut samples = Vec::new();
    for i in 0..2000 {
        let path = paths[i % paths.len()];
        let answer = server.get(path).await;
        assert!(answer.status.as_u16() < 500, "{path}: {}", answer.text);
        if (i + 1) % 250 == 0 {
            let (on_database, other) = server.open_files(&database);
            samples.push((i + 1, on_database, other, server.rss_kb()));
        }
    }
    // Descriptors on the database files belong to pooled connections (the file, its WAL and its
    // shared-memory file, at most three each): the pool opens them lazily, up to its bound. Every
    // other descriptor (sockets, log files: the seed leaked one per call) must stay flat once the
    // first 500 requests have warmed the caches and the allocator.
    let warm = samples.iter().position(|(n, ..)| *n == 500).expect("sample at 500");
    let (_, _, warm_other, warm_rss) = samples[warm];
    for &(n, on_database, other, rss) in &samples[warm..] {
        assert!(
            on_database <= 3 * POOL,
            "{on_database} descriptors on the database with a pool of {POOL}: {samples:?}"
        );
        assert!(
            other <= warm_other + 1,
            "open files grew: {warm_other} after 500 requests, {other} after {n}: {samples:?}"
        );
        assert!(rss <= warm_rss + 4096, "RSS grew: {warm_rss} kB after 500 requests, {rss} kB after {n}: {samples:?}");
    }
    let (_, _, last_other, last_rss) = samples[samples.len() - 1];
    let (_, _, mid_other, mid_rss) = samples[samples.len() / 2 + 1];
    assert!(last_other <= mid_other + 1 && last_rss <= mid_rss + 2048, "still growing at the end: {samples:?}");
    eprintln!("samples (requests, database fds, other fds, RSS kB): {samples:?}");
}
