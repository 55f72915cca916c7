//! A headless Chromium for one test: its own chromedriver on a free port, one session, and what the
//! tests need beyond WebDriver (the viewport set exactly through the DevTools protocol, full-page
//! screenshots, the browser's console log). The driver is killed when the `Browser` is dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::http::Method;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::Url;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The flags the container needs: no sandbox (root, no user namespaces), no GPU, /tmp not /dev/shm.
const FLAGS: [&str; 4] = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"];

/// What the page is looked at through: a desktop window or a phone's.
#[derive(Debug, Clone, Copy)]
pub struct Viewport {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub mobile: bool,
}

pub const DESKTOP: Viewport = Viewport { name: "desktop", width: 1280, height: 800, mobile: false };
pub const PHONE: Viewport = Viewport { name: "phone", width: 390, height: 844, mobile: true };

pub struct Browser {
    pub client: Client,
    /// The service's address, `http://127.0.0.1:port`.
    pub base: String,
    chromedriver: Child,
    /// Chromium's profile and temporary files, removed with the browser.
    home: PathBuf,
}

/// Killing chromedriver alone would leave its Chromium running, orphaned: the browser is killed first
/// (also when the test panicked before closing its session). chromedriver and Chromium stay in the
/// test's process group, so a test that nextest ends at its timeout takes them with it too.
impl Drop for Browser {
    fn drop(&mut self) {
        kill_browser(&mut self.chromedriver);
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Kills every process chromedriver started (Chromium and its renderers and helpers) and chromedriver,
/// and waits (2 s at most) until they are gone, so that none writes to the folder removed next.
fn kill_browser(chromedriver: &mut Child) {
    let Some(driver) = chromedriver.id() else { return };
    let mut family = vec![driver as i32];
    let mut next = 0;
    while next < family.len() {
        family.extend(children_of(family[next]));
        next += 1;
    }
    for pid in family.iter().filter_map(|pid| rustix::process::Pid::from_raw(*pid)) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    let _ = chromedriver.try_wait(); // reaps chromedriver; init reaps the rest
    let deadline = Instant::now() + Duration::from_secs(2);
    while family.iter().any(|pid| stat(*pid).is_some_and(|(state, _)| state != "Z")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let _ = chromedriver.try_wait();
    }
}

/// A process's state and parent, from /proc/<pid>/stat: "pid (command) state ppid ...", where the
/// command may hold spaces and parentheses.
fn stat(pid: i32) -> Option<(String, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.to_owned();
    Some((state, fields.next()?.parse().ok()?))
}

/// The processes whose parent is `parent`.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| stat(*pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

impl Browser {
    /// Starts chromedriver and a session, and opens nothing yet. Panics, naming the package, when
    /// chromedriver or Chromium is missing.
    pub async fn start(base: &str) -> Self {
        let chromedriver = std::env::var("RACELAB_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.to_owned());
        assert!(
            Path::new(&chromedriver).exists(),
            "chromedriver not found at {chromedriver}: install Debian's chromium and chromium-driver \
             (`apt-get install chromium chromium-driver`; scripts/test does it when they are missing)"
        );
        let chromium = std::env::var("RACELAB_CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_owned());
        assert!(Path::new(&chromium).exists(), "Chromium not found at {chromium}: `apt-get install chromium`");

        // A port chromedriver may take: free when asked. Another process could take it in between;
        // chromedriver then fails to start, and the next attempt gets another port.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            // Chromium's profile and temporary files (TMPDIR), all removed with the browser.
            let home = std::env::temp_dir().join(format!("racelab-chromium-{}-{port}", std::process::id()));
            std::fs::create_dir_all(home.join("tmp")).expect("create the browser's folder");
            let mut child = Command::new(&chromedriver)
                .env("TMPDIR", home.join("tmp"))
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}"));
            let url = format!("http://127.0.0.1:{port}");
            match wait_until_up(&url, &mut child).await {
                Ok(()) => match session(&url, &chromium, &home.join("profile")).await {
                    Ok(client) => {
                        let base = base.trim_end_matches('/').to_owned();
                        return Self { client, base, chromedriver: child, home };
                    }
                    Err(err) => {
                        kill_browser(&mut child);
                        let _ = std::fs::remove_dir_all(&home);
                        panic!("cannot open a Chromium session through chromedriver at {url}: {err}");
                    }
                },
                Err(err) => {
                    kill_browser(&mut child);
                    let _ = std::fs::remove_dir_all(&home);
                    last_error = err;
                }
            }
        }
        panic!("chromedriver did not start: {last_error}");
    }

    /// A browser at desktop size on the service's page, once the page says the database is ready.
    pub async fn on_the_page(base: &str, ready_within: Duration) -> Self {
        let browser = Self::start(base).await;
        browser.set_viewport(DESKTOP).await;
        browser.open("/").await;
        browser.wait_for(r#"#db-state[data-ready="true"]"#, ready_within).await;
        browser
    }

    pub async fn open(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.client.goto(&url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Sets the layout viewport exactly (the window's own size would include no browser chrome in
    /// headless mode, but the phone also needs its device metrics: `mobile` honours the page's
    /// `<meta name="viewport">`).
    pub async fn set_viewport(&self, viewport: Viewport) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": viewport.width, "height": viewport.height, "deviceScaleFactor": 1, "mobile": viewport.mobile}),
        )
        .await;
    }

    /// Runs a DevTools protocol command through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.client
            .issue_cmd(Extension {
                method: Method::POST,
                path: "goog/cdp/execute",
                body: json!({"cmd": cmd, "params": params}),
            })
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    /// Saves what the viewport shows, and the whole page, as `target/screenshots/{name}.png` and
    /// `{name}-full.png`.
    pub async fn screenshots(&self, name: &str) -> Vec<PathBuf> {
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).expect("create target/screenshots");
        let viewport = self.client.screenshot().await.expect("screenshot");
        let full = self.cdp("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true})).await;
        let full = BASE64.decode(full["data"].as_str().expect("captureScreenshot returns data")).expect("base64 PNG");
        let paths = vec![dir.join(format!("{name}.png")), dir.join(format!("{name}-full.png"))];
        std::fs::write(&paths[0], viewport).expect("write screenshot");
        std::fs::write(&paths[1], full).expect("write screenshot");
        paths
    }

    /// Saves the part of the page under `selector` (its first `max_height` CSS pixels, scaled by
    /// `scale`) as `target/screenshots/{name}.png`: a small picture of one part, for the README.
    pub async fn screenshot_of(&self, selector: &str, name: &str, max_height: f64, scale: f64) -> PathBuf {
        let rect = self
            .js(
                "const r = document.querySelector(arguments[0]).getBoundingClientRect(); \
                 return [r.left + scrollX, r.top + scrollY, r.width, r.height];",
                vec![json!(selector)],
            )
            .await;
        let at = |i: usize| rect[i].as_f64().expect("a number");
        let clip = json!({"x": at(0), "y": at(1), "width": at(2), "height": at(3).min(max_height), "scale": scale});
        let shot = self
            .cdp("Page.captureScreenshot", json!({"format": "png", "clip": clip, "captureBeyondViewport": true}))
            .await;
        let png = BASE64.decode(shot["data"].as_str().expect("captureScreenshot returns data")).expect("base64 PNG");
        let path = screenshots_dir().join(format!("{name}.png"));
        std::fs::create_dir_all(screenshots_dir()).expect("create target/screenshots");
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits (at most `limit`) until `selector` matches an element.
    pub async fn wait_for(&self, selector: &str, limit: Duration) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(limit)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("no `{selector}` after {limit:?}: {e}"))
    }

    /// Waits (at most `limit`) until `condition` (a JS expression) is true.
    pub async fn wait_until(&self, condition: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.js(&format!("return Boolean({condition});"), vec![]).await == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "`{condition}` still false after {limit:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The elements that stick out of the viewport on the right (ignoring what scrolls inside its own
    /// box): none on a page that fits its width.
    /// Waits (5 s at most) for the layout to settle after a viewport change first.
    pub async fn overflowing(&self) -> Value {
        let fits = "document.documentElement.scrollWidth <= document.documentElement.clientWidth";
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.js(&format!("return {fits};"), vec![]).await != json!(true) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.js(OVERFLOWING, vec![]).await
    }

    /// Every error the page collected (its `window.racelabErrors` hook: exceptions, rejections,
    /// failed loads, console.error) and every SEVERE entry of the browser's console log except
    /// the network ones listed in `expected_network` (e.g. a 503 the test caused). chromedriver
    /// empties its log as it is read: each entry is seen by one call only.
    pub async fn errors(&self, expected_network: &[&str]) -> Vec<String> {
        let mut errors: Vec<String> = match self.js("return window.racelabErrors || null;", vec![]).await {
            Value::Array(list) => list.iter().map(|e| format!("page: {}", e.as_str().unwrap_or_default())).collect(),
            _ => vec!["page: the error hook (window.racelabErrors) is missing".to_owned()],
        };
        errors.extend(self.console_errors(expected_network).await);
        errors
    }

    /// The SEVERE entries of the browser's console log (a refused script or style, a failed load, an
    /// exception) except the network ones listed in `expected_network`; for pages without the error
    /// hook. Emptied as it is read, like [`Self::errors`].
    pub async fn console_errors(&self, expected_network: &[&str]) -> Vec<String> {
        let mut errors = Vec::new();
        let log = self
            .client
            .issue_cmd(Extension { method: Method::POST, path: "se/log", body: json!({"type": "browser"}) })
            .await
            .unwrap_or_else(|e| panic!("read the browser log: {e}"));
        for entry in log.as_array().into_iter().flatten() {
            let message = entry["message"].as_str().unwrap_or_default();
            let severe = entry["level"] == "SEVERE";
            let expected = expected_network.iter().any(|what| message.contains(what));
            if severe && !expected {
                errors.push(format!("console: {message}"));
            }
        }
        errors
    }

    /// No error reported, and no JavaScript value printed as text where a number or a word belonged.
    pub async fn assert_no_errors(&self, expected_network: &[&str]) {
        let garbage = self
            .js(
                r"const m = /\[object Object\]|\bundefined\b|\bNaN\b/.exec(document.body.innerText); return m && m[0];",
                vec![],
            )
            .await;
        assert_eq!(garbage, Value::Null, "the page shows a JavaScript value as text");
        let errors = self.errors(expected_network).await;
        assert!(errors.is_empty(), "the page reported errors:\n{}", errors.join("\n"));
    }
}

const OVERFLOWING: &str = r##"
    const width = document.documentElement.clientWidth;
    const clipped = (el) => {
        for (let p = el.parentElement; p; p = p.parentElement) {
            const x = getComputedStyle(p).overflowX;
            if (x === "auto" || x === "scroll" || x === "hidden") return true;
        }
        return false;
    };
    const out = [...document.body.querySelectorAll("*")]
        .filter((el) => el.getBoundingClientRect().right > width + 0.5 && !clipped(el))
        .map((el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${[...el.classList].join(".")} right=${Math.round(el.getBoundingClientRect().right)}`);
    return { scroll: document.documentElement.scrollWidth - width, elements: out.slice(0, 8) };
"##;

/// `target/screenshots`, beside the build's other output.
pub fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Polls chromedriver's `/status` until it says ready, for at most 10 s.
async fn wait_until_up(url: &str, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let client = reqwest::Client::new();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("chromedriver exited with {status}"));
        }
        if let Ok(answer) = client.get(format!("{url}/status")).send().await {
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            if body["value"]["ready"] == true {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no ready answer from {url}/status in 10 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn session(url: &str, chromium: &str, profile: &Path) -> Result<Client, fantoccini::error::NewSessionError> {
    let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
    args.extend(["--window-size=1280,800".to_owned(), "--hide-scrollbars".to_owned()]);
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium, "args": args},
        // The console, for `errors`.
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let Value::Object(capabilities) = capabilities else { unreachable!("a JSON object") };
    ClientBuilder::new(HttpConnector::new()).capabilities(capabilities).connect(url).await
}

/// A chromedriver command that WebDriver does not define (`/session/{id}/{path}`).
#[derive(Debug)]
struct Extension {
    method: Method,
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for Extension {
    fn endpoint(&self, base_url: &Url, session_id: Option<&str>) -> Result<Url, <Url as std::str::FromStr>::Err> {
        base_url.join(&format!("session/{}/{}", session_id.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _request_url: &Url) -> (Method, Option<String>) {
        (self.method.clone(), Some(self.body.to_string()))
    }
}
