//! How long `/health` and `/ready` take to answer while slow-header clients (a slowloris) hold the
//! connection cap: CLIENTS clients each send a request head one byte a second and never finish it,
//! and reconnect at once whenever the server closes them (shed, or at the header timeout), so the cap
//! stays full. Meanwhile a new connection asks `/health`, then `/ready`, every 50 ms, from a thread
//! of its own (as a health checker is a process of its own); the example prints the latency of each
//! (connect to last byte) and how many were not 200.
//!
//! ```sh
//! cargo build --release
//! DATABASE_URL=sqlite:///tmp/racelab-slow.db target/release/racelab serve --bind 127.0.0.1:8000 &
//! cargo run --release --example slow_heads -- 127.0.0.1:8000 1100 20
//! # under a small descriptor limit:
//! DATABASE_URL=sqlite:///tmp/racelab-slow.db sh -c 'ulimit -n 256; exec target/release/racelab serve --bind 127.0.0.1:8001' &
//! cargo run --release --example slow_heads -- 127.0.0.1:8001 200 20
//! ```
//!
//! Arguments: the server's address (default 127.0.0.1:8000), the number of slow clients (1100), and
//! how many seconds to probe for (20). Loopback only: it is a load generator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The head every slow client begins; then one byte a second of a header value that never ends.
const SLOW_HEAD: &[u8] = b"GET /health HTTP/1.1\r\nHost: racelab\r\nX-Slow: ";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let address: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:8000").parse().expect("an address");
    assert!(address.ip().is_loopback(), "{address} is not a loopback address: this is a load generator");
    let clients: usize = args.next().map_or(1100, |n| n.parse().expect("a number of clients"));
    let seconds: u64 = args.next().map_or(20, |n| n.parse().expect("a number of seconds"));
    raise_open_files_limit(clients as u64 + 256);

    let reconnects = Arc::new(AtomicU64::new(0));
    for _ in 0..clients {
        tokio::spawn(slow_client(address, reconnects.clone()));
    }
    // Every client connected and its head begun: the cap is full from here on.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The prober is a thread of its own with blocking sockets, as a load balancer's health checker
    // is a process of its own: on the clients' runtime, its head would wait behind theirs.
    let prober = std::thread::spawn(move || {
        let mut latencies: [(&str, Vec<Duration>, usize); 2] = [("/health", Vec::new(), 0), ("/ready", Vec::new(), 0)];
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(seconds) {
            for (path, times, failures) in &mut latencies {
                std::thread::sleep(Duration::from_millis(50));
                let started = Instant::now();
                match probe(address, path) {
                    Ok(200) => times.push(started.elapsed()),
                    other => {
                        *failures += 1;
                        eprintln!("{path} at {:?}: {other:?}", start.elapsed());
                    }
                }
            }
        }
        latencies
    });
    let mut latencies =
        tokio::task::spawn_blocking(move || prober.join().expect("the prober")).await.expect("the prober's thread");

    println!(
        "{clients} slow-header clients against {address} ({} reconnections after being closed):",
        reconnects.load(Ordering::Relaxed)
    );
    for (path, times, failures) in &mut latencies {
        times.sort();
        let at = |q: f64| times.get(((times.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default();
        println!(
            "  {path:8} {} answered 200, {failures} not: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            times.len(),
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            at(1.0).as_secs_f64() * 1e3,
        );
    }
}

/// One slowloris: begins a head, adds a byte a second, reconnects whenever the server closes it.
async fn slow_client(address: SocketAddr, reconnects: Arc<AtomicU64>) {
    loop {
        let Ok(mut stream) = TcpStream::connect(address).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if stream.write_all(SLOW_HEAD).await.is_ok() {
            let mut buf = [0u8; 512];
            loop {
                tokio::select! {
                    read = stream.read(&mut buf) => match read {
                        Ok(n) if n > 0 => {}
                        _ => break,
                    },
                    () = tokio::time::sleep(Duration::from_secs(1)) => {
                        if stream.write_all(b"a").await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// `GET path` on a new connection, with blocking sockets; the status, once the answer is read whole
/// (to the close), within 5 s.
fn probe(address: SocketAddr, path: &str) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: racelab\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let status = answer.get(9..12).and_then(|s| std::str::from_utf8(s).ok()?.parse().ok());
    status.ok_or_else(|| std::io::Error::other(format!("no answer: {:?}", String::from_utf8_lossy(&answer))))
}

/// Raises the soft open-files limit to `needed` (as far as the hard limit allows): this process holds
/// every client's socket.
#[cfg(unix)]
fn raise_open_files_limit(needed: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < needed) {
        limit.current = Some(limit.maximum.map_or(needed, |maximum| maximum.min(needed)));
        if let Err(err) = setrlimit(Resource::Nofile, limit) {
            eprintln!("cannot raise the open-files limit to {needed}: {err}");
        }
    }
}

#[cfg(not(unix))]
fn raise_open_files_limit(_needed: u64) {}
