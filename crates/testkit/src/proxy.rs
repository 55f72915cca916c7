//! A TCP proxy between the code under test and the database server, which the test can cut, sever,
//! restore, or set to lose the answer to one chosen statement: the faults that make a commit's fate
//! unknown, forced at a chosen byte instead of hoped for.
//!
//! ```text
//! let (upstream, rewrite) = TcpProxy::route(&test.url);
//! let proxy = TcpProxy::start(upstream).await;
//! let trap = proxy.lose_answer_to(b"COMMIT", 2); // the third COMMIT runs, its answer never arrives
//! let db = connect(rewrite(proxy.port)).await;
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A proxy on a port of its own that forwards to one server.
pub struct TcpProxy {
    pub port: u16,
    open: watch::Sender<bool>,
    /// Bumped by [`TcpProxy::sever`]: every live connection closes, new ones are still let through.
    severed: watch::Sender<u64>,
    trap: Arc<Mutex<Option<Trap>>>,
    tallies: Tallies,
    accept: tokio::task::JoinHandle<()>,
}

/// What the test counts in the bytes clients send: each pattern, and how many times it was sent.
type Tallies = Arc<Mutex<Vec<(Vec<u8>, Arc<AtomicUsize>)>>>;

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = self.open.send(false);
    }
}

/// Where a trap cuts the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Forward the statement, wait for the server's answer, drop it, and close: the statement ran,
    /// the client never learns it did.
    AfterServerAnswers,
    /// Close instead of forwarding the statement: it never ran, and the client cannot know that
    /// either.
    BeforeForwarding,
    /// The pattern is in the server's answer (e.g. PostgreSQL's `UPDATE 1`, for a prepared statement
    /// whose text is not sent again): drop that answer, and close.
    AnswerContaining,
}

/// A trap set for one statement: the `skip + 1`-th time any client sends bytes containing `pattern`.
struct Trap {
    pattern: Vec<u8>,
    skip: usize,
    cut: Cut,
    sprung: Sprung,
}

type Sprung = Arc<watch::Sender<bool>>;

/// Tells the test when its trap has sprung.
pub struct TrapHandle {
    sprung: watch::Receiver<bool>,
}

impl TrapHandle {
    /// Waits until the trap has cut its connection (returns at once if it already has).
    pub async fn sprung(&mut self) {
        let _ = self.sprung.wait_for(|sprung| *sprung).await;
    }

    /// Whether the trap has sprung, without waiting.
    pub fn has_sprung(&self) -> bool {
        *self.sprung.borrow()
    }
}

impl TcpProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let port = listener.local_addr().expect("proxy address").port();
        let (open, _) = watch::channel(true);
        let (severed, _) = watch::channel(0);
        let trap: Arc<Mutex<Option<Trap>>> = Arc::default();
        let tallies: Tallies = Arc::default();
        let (opened, severs, traps, counts) = (open.clone(), severed.clone(), trap.clone(), tallies.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*opened.borrow() {
                    continue; // dropped: the connection is closed at once
                }
                let relay = Relay {
                    is_open: opened.subscribe(),
                    is_severed: severs.subscribe(),
                    trap: traps.clone(),
                    tallies: counts.clone(),
                };
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    relay.run(client, server).await;
                });
            }
        });
        Self { port, open, severed, trap, tallies, accept }
    }

    /// Counts, from now on, every time a client sends `pattern` (on any connection, split across
    /// reads or not): e.g. how many pings a pool sends.
    pub fn count_sent(&self, pattern: &[u8]) -> Arc<AtomicUsize> {
        let count = Arc::new(AtomicUsize::new(0));
        self.tallies.lock().expect("tallies lock").push((pattern.to_vec(), count.clone()));
        count
    }

    /// Closes every proxied connection and refuses new ones (they are accepted and closed at once).
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Closes every proxied connection, and goes on letting new ones through.
    pub fn sever(&self) {
        self.severed.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.open.send_replace(true);
    }

    /// Lets `skip` statements containing `pattern` through, then runs the next one and loses its
    /// answer: the server executes it, and the connection is closed before the client hears back.
    pub fn lose_answer_to(&self, pattern: &[u8], skip: usize) -> TrapHandle {
        self.set_trap(pattern, skip, Cut::AfterServerAnswers)
    }

    /// Lets `skip` statements containing `pattern` through, then closes the connection instead of
    /// forwarding the next one.
    pub fn drop_before(&self, pattern: &[u8], skip: usize) -> TrapHandle {
        self.set_trap(pattern, skip, Cut::BeforeForwarding)
    }

    /// Lets `skip` answers containing `pattern` through, then drops the next one and closes: the
    /// statement it answers ran, the client never learns it did.
    pub fn lose_answer_containing(&self, pattern: &[u8], skip: usize) -> TrapHandle {
        self.set_trap(pattern, skip, Cut::AnswerContaining)
    }

    fn set_trap(&self, pattern: &[u8], skip: usize, cut: Cut) -> TrapHandle {
        let (sprung, watcher) = watch::channel(false);
        let trap = Trap { pattern: pattern.to_vec(), skip, cut, sprung: Arc::new(sprung) };
        *self.trap.lock().expect("trap lock") = Some(trap);
        TrapHandle { sprung: watcher }
    }

    /// `url` with its host and port replaced by this proxy; and the upstream address it named.
    pub fn route(url: &str) -> (SocketAddr, impl FnOnce(u16) -> String + use<>) {
        let (scheme, rest) = url.split_once("://").expect("URL has a scheme");
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let (credentials, host_port) = authority.rsplit_once('@').map_or(("", authority), |(c, h)| (c, h));
        let upstream: SocketAddr = host_port.parse().expect("test server URL has an IP address and a port");
        let (scheme, credentials, path) = (scheme.to_owned(), credentials.to_owned(), path.to_owned());
        let rewrite = move |port: u16| {
            let at = if credentials.is_empty() { String::new() } else { format!("{credentials}@") };
            format!("{scheme}://{at}127.0.0.1:{port}{path}")
        };
        (upstream, rewrite)
    }
}

/// One proxied connection.
struct Relay {
    is_open: watch::Receiver<bool>,
    is_severed: watch::Receiver<u64>,
    trap: Arc<Mutex<Option<Trap>>>,
    tallies: Tallies,
}

impl Relay {
    async fn run(self, mut client: TcpStream, mut server: TcpStream) {
        let Relay { mut is_open, mut is_severed, trap, tallies } = self;
        let (mut from_client, mut from_server) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        // The last bytes from the client, so a pattern split across two reads is still found.
        let (mut tail, mut server_tail): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
        // Set once this connection's statement is the trapped one: the next answer is lost.
        let mut losing: Option<Sprung> = None;
        loop {
            tokio::select! {
                read = client.read(&mut from_client) => {
                    let Ok(n @ 1..) = read else { return };
                    let chunk = &from_client[..n];
                    match spring(&trap, Side::Client, &tail, chunk) {
                        Some((Cut::BeforeForwarding, sprung)) => {
                            sprung.send_replace(true);
                            return;
                        }
                        Some((_, sprung)) => losing = Some(sprung),
                        None => {}
                    }
                    for (pattern, count) in tallies.lock().expect("tallies lock").iter() {
                        count.fetch_add(matches_ending_in(pattern, &tail, chunk), Ordering::SeqCst);
                    }
                    keep_tail(&mut tail, chunk);
                    if server.write_all(chunk).await.is_err() {
                        return;
                    }
                }
                read = server.read(&mut from_server) => {
                    let Ok(n @ 1..) = read else { return };
                    let chunk = &from_server[..n];
                    if let Some(sprung) = losing.take().or_else(|| spring(&trap, Side::Server, &server_tail, chunk).map(|(_, s)| s)) {
                        sprung.send_replace(true);
                        return; // both sockets close; the answer is dropped with them
                    }
                    keep_tail(&mut server_tail, chunk);
                    if client.write_all(chunk).await.is_err() {
                        return;
                    }
                }
                _ = async { is_open.wait_for(|open| !open).await.map(drop) } => return,
                _ = is_severed.changed() => return,
            }
        }
    }
}

/// Which way bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// Whether `chunk`, sent by `side`, holds what the trap waits for; takes the trap if it springs here.
fn spring(trap: &Mutex<Option<Trap>>, side: Side, tail: &[u8], chunk: &[u8]) -> Option<(Cut, Sprung)> {
    {
        let mut guard = trap.lock().expect("trap lock");
        let trap = guard.as_mut()?;
        let watched = if trap.cut == Cut::AnswerContaining { Side::Server } else { Side::Client };
        if side != watched {
            return None;
        }
        if matches_ending_in(&trap.pattern, tail, chunk) == 0 {
            return None;
        }
        if trap.skip > 0 {
            trap.skip -= 1;
            return None;
        }
        guard.take().map(|trap| (trap.cut, trap.sprung))
    }
}

/// How many times `pattern` ends in `chunk`, the bytes after `tail`: a match in the tail alone was
/// counted with its own chunk.
fn matches_ending_in(pattern: &[u8], tail: &[u8], chunk: &[u8]) -> usize {
    let mut window = tail.to_vec();
    window.extend_from_slice(chunk);
    window.windows(pattern.len()).enumerate().filter(|(at, w)| *w == pattern && at + w.len() > tail.len()).count()
}

/// Keeps the last few bytes the client sent (enough for any pattern a test uses).
fn keep_tail(tail: &mut Vec<u8>, chunk: &[u8]) {
    const KEEP: usize = 64;
    tail.extend_from_slice(chunk);
    if tail.len() > KEEP {
        tail.drain(..tail.len() - KEEP);
    }
}
