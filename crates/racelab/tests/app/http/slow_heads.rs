//! Slow-header clients (a slowloris: a request head sent a byte at a time, never finished) cannot
//! fill the connection cap: a connection whose head is not complete is not yet a request, so at the
//! cap it is shed (the oldest first) before a kept-alive connection to make room for a request, and
//! a connection with a complete head (a request in the service) is never shed. Slow heads arriving
//! over the cap take no one's place: they wait for their head and are closed unanswered. `/health`
//! and `/ready` answer 200 however many such connections are held, at the default cap and under
//! `ulimit -n 256`.
//!
//! Each slow head here is held, not trickled: once its first bytes are in, a head sent at a byte a
//! second and one that stopped are the same to the server until the header timeout, which these
//! tests set longer than themselves, so that only shedding can make room.
//!
//! ```sh
//! cargo nextest run -p racelab --test app http::slow_heads
//! ```

use std::time::Duration;

use racelab_core::Backend;
use racelab_testkit::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::hardening::closed_by_server;
use super::process::Server;

/// How long the server may take to close a connection it sheds.
const CLOSE_WITHIN: Duration = Duration::from_secs(20);

/// The first bytes of a request head, never finished.
const SLOW_HEAD: &[u8] = b"GET /health HTTP/1.1\r\nHost: racelab\r\nX-Slow: ";

/// A request whose head is complete and whose body the client holds back until the server asks for
/// it (`100 Continue`): from then on the service has the request. The body (10 bytes, sent last) is
/// not a valid experiment: the answer is a problem, which is all the test needs, an answer.
const BUSY_HEAD: &[u8] = b"POST /experiments HTTP/1.1\r\nHost: racelab\r\nContent-Type: application/json\r\n\
Content-Length: 10\r\nExpect: 100-continue\r\n\r\n";
const BUSY_BODY: &[u8] = b"{\"kind\":1}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eleven_hundred_slow_heads_at_the_default_cap_leave_health_and_ready_answering() {
    racelab_testkit::run(Backend::Sqlite, |test| slow_heads(test, 1_100, None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_ulimit_256_two_hundred_slow_heads_leave_health_and_ready_answering() {
    racelab_testkit::run(Backend::Sqlite, |test| slow_heads(test, 200, Some(256))).await;
}

/// `clients` slow heads held against `racelab serve` (under `ulimit -n open_files`, if given), after a
/// request in the service and a kept-alive connection, both older than every slow head.
async fn slow_heads(test: TestDb, clients: usize, open_files: Option<u32>) {
    // This process holds every client socket.
    raise_open_files_limit(clients as u64 + 256);
    let env = [
        ("RACELAB_HEADER_READ_TIMEOUT", "300s"),
        ("RACELAB_KEEP_ALIVE_TIMEOUT", "300s"),
        ("RACELAB_REQUEST_TIMEOUT", "300s"),
    ];
    let mut server = Server::start_with(&test.url, 40, &env, open_files).await;
    let budget = server.wait_for_log("connections").await;
    let cap = cap_in(&budget);
    if let Some(limit) = open_files {
        assert!(budget.contains(&format!("open-files limit is {limit}")), "{budget}");
    }
    assert!(clients > cap, "{clients} slow heads do not reach the cap: {budget}");
    let address = server.address.trim_start_matches("http://").to_owned();

    // The oldest connection: a request in the service, reading its body.
    let mut busy = TcpStream::connect(&address).await.expect("connect");
    busy.write_all(BUSY_HEAD).await.expect("write");
    let interim = read_head(&mut busy).await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    // The next oldest: a connection kept alive after a request.
    let mut kept = TcpStream::connect(&address).await.expect("connect");
    let (status, text) = request_on(&mut kept, "/health").await;
    assert_eq!(status, 200, "{text}");

    // The cap filled with slow heads, all younger than the busy and the kept-alive connections.
    let mut slow = Vec::with_capacity(cap - 2);
    for _ in 2..cap {
        slow.push(slow_head(&address).await);
    }
    // The rest arrive over the cap (as clients that reconnect whenever they are closed would): a
    // connection without a whole head takes no one's place. They wait, and are closed unanswered
    // once they have waited too long, or more have arrived than the server keeps waiting.
    let mut over = Vec::with_capacity(clients - slow.len());
    for _ in slow.len()..clients {
        over.push(slow_head(&address).await);
    }

    // `/health` and `/ready` at once, each on a new connection kept open: each is a request, and
    // takes the place of the oldest slow head.
    let mut probes = Vec::new();
    for path in ["/health", "/ready"] {
        let started = Instant::now();
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        let (status, text) = request_on(&mut stream, path).await;
        eprintln!("{path} answered in {:?} with {clients} slow heads held", started.elapsed());
        assert_eq!(status, 200, "{path} with {clients} slow heads held: {text}");
        probes.push(stream);
    }
    for (i, stream) in over.iter_mut().enumerate() {
        let said = closed_by_server(stream, CLOSE_WITHIN).await;
        assert!(said.is_empty(), "slow head {i} over the cap was answered: {}", String::from_utf8_lossy(&said));
    }

    // Exactly the two oldest slow heads were shed: the rest are still open.
    let shed = probes.len();
    for (i, stream) in slow[..shed].iter_mut().enumerate() {
        let said = closed_by_server(stream, CLOSE_WITHIN).await;
        assert!(said.is_empty(), "slow head {i} was answered: {}", String::from_utf8_lossy(&said));
    }
    for (i, stream) in slow.iter().enumerate().skip(shed) {
        let mut buf = [0u8; 64];
        match stream.try_read(&mut buf) {
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("slow head {i} of {}, younger than the {shed} shed, was closed: {other:?}", slow.len()),
        }
    }

    // The request in the service was not cut: it gets its answer once its body is in.
    busy.write_all(BUSY_BODY).await.expect("write the body");
    let answer = read_head(&mut busy).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "the busy request was not answered: {answer}");
    // The kept-alive connection was not shed: it serves another request.
    let (status, text) = request_on(&mut kept, "/health").await;
    assert_eq!(status, 200, "{text}");
    drop((slow, probes));
}

/// A new connection that sends the first bytes of a request head and no more.
async fn slow_head(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(SLOW_HEAD).await.expect("write");
    stream
}

/// The cap the server logged: `at most N connections`.
fn cap_in(line: &str) -> usize {
    line.split("at most ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no cap in: {line}"))
}

/// Raises this process's soft open-files limit to `needed` (as far as the hard limit allows).
fn raise_open_files_limit(needed: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|current| current >= needed) {
        return;
    }
    limit.current = Some(limit.maximum.map_or(needed, |maximum| maximum.min(needed)));
    setrlimit(Resource::Nofile, limit).expect("setrlimit(RLIMIT_NOFILE)");
    let now = getrlimit(Resource::Nofile).current;
    assert!(now.is_none_or(|n| n >= needed), "the test needs {needed} descriptors; the hard limit allows {now:?}");
}

/// Reads up to the end of one answer's head (20 s at most) and returns it.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = async {
        let mut byte = [0u8; 1];
        while !received.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(0) | Err(_) => return,
                Ok(_) => received.push(byte[0]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read).await.expect("an answer within 20 s");
    String::from_utf8_lossy(&received).into_owned()
}

/// Sends `GET path` on `stream`, keeping it alive, and reads the answer whole: (status, text).
async fn request_on(stream: &mut TcpStream, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: racelab\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let head = read_head(stream).await;
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no answer: {head:?}"));
    let length = head
        .to_ascii_lowercase()
        .lines()
        .find_map(|l| l.strip_prefix("content-length: ")?.trim().parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    let mut body = vec![0u8; length];
    tokio::time::timeout(Duration::from_secs(20), stream.read_exact(&mut body))
        .await
        .expect("the body within 20 s")
        .expect("the body");
    (status, format!("{head}{}", String::from_utf8_lossy(&body)))
}
