//! The page at `/`: run experiments from a browser, watch them live, see the lost update drawn.
//!
//! ```sh
//! cargo run -- serve --bind 127.0.0.1:8000   # then open http://127.0.0.1:8000/
//! ```
//!
//! Every file of the page lives in `crates/racelab/assets/` and is compiled into the binary
//! (`include_bytes!`), so the page works with no internet, no CDN and nothing fetched at build or run
//! time. The page speaks only the public API (`/experiments`, `/ready`); this module never touches the
//! database. `/runs/{id}` serves the same page, which reads the id from its URL and shows that run.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error::ApiError;

/// One embedded file.
struct Asset {
    /// Path under `/assets/` (`index.html` is served at `/` instead).
    path: &'static str,
    bytes: &'static [u8],
    content_type: &'static str,
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
            content_type: $content_type,
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page's files. A file missing here is a 404, so adding an asset means adding a line.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("errors.js", JS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("format.js", JS),
    asset!("health.js", JS),
    asset!("form.js", JS),
    asset!("run.js", JS),
    asset!("charts.js", JS),
    asset!("timeline.js", JS),
    asset!("anomalies.js", JS),
    asset!("spec.js", JS),
    asset!("vendor/chart.js-4.6.2/chart.umd.min.js", JS),
    asset!("vendor/chart.js-4.6.2/LICENSE.md", "text/markdown; charset=utf-8"),
];

/// Files under this prefix carry their version in their path: a new version is a new URL, so browsers
/// may keep them for a year without asking. Everything else is revalidated (cheaply, by ETag) on every
/// load, so a new binary's page is seen at once.
const IMMUTABLE_PREFIX: &str = "vendor/";

/// Only what the binary serves: no CDN could be used by mistake, and a script that tried would fail
/// loudly (a console error the browser tests catch). Chart.js sets inline styles on its canvases.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// `/`, `/runs/{id}` and `/assets/*`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/runs/{id}", get(run_page)).route("/assets/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// A run's own URL: the same page, which loads the run named in its address.
async fn run_page(Path(_id): Path<String>, headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some((index, asset)) = ASSETS.iter().enumerate().find(|(_, asset)| asset.path == path) else {
        return ApiError::NoRoute.into_response();
    };
    let etag = &etags()[index];
    let cache_control =
        if path.starts_with(IMMUTABLE_PREFIX) { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    if matches(request, etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    (headers, asset.bytes).into_response()
}

/// Whether `If-None-Match` names the current version (a list, `*`, or weak forms, per RFC 9110 13.1.2).
fn matches(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(wanted) = request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let current = etag.to_str().unwrap_or_default();
    wanted.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == current)
}

/// One strong ETag per asset, a hash of its bytes, computed once (the bytes never change in a process).
fn etags() -> &'static [HeaderValue] {
    static ETAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                HeaderValue::from_str(&format!("\"{:016x}\"", fnv1a(asset.bytes))).expect("hex is a valid header value")
            })
            .collect()
    })
}

/// FNV-1a, 64 bits: stable across builds and Rust versions (unlike `DefaultHasher`), and plenty to tell
/// two versions of one file apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_embedded() {
        let index = std::str::from_utf8(ASSETS[0].bytes).expect("index.html is UTF-8");
        let scripts = ASSETS.iter().filter(|a| a.path.ends_with(".js")).map(|a| a.path);
        for path in ["app.css", "errors.js", "app.js", "vendor/chart.js-4.6.2/chart.umd.min.js"] {
            assert!(index.contains(&format!("/assets/{path}")), "index.html does not load {path}");
        }
        // Modules import each other by relative path: each import must be an embedded file.
        for script in scripts.clone() {
            let source = std::str::from_utf8(ASSETS.iter().find(|a| a.path == script).unwrap().bytes).unwrap();
            for line in source.lines().filter(|l| l.starts_with("import ")) {
                let target = line.split(['"', '\'']).nth(1).expect("import names a file");
                let target = target.trim_start_matches("./");
                assert!(ASSETS.iter().any(|a| a.path == target), "{script} imports {target}, which is not embedded");
            }
        }
    }

    #[test]
    fn if_none_match_with_the_current_tag_is_not_modified() {
        let etag = &etags()[1];
        let mut request = HeaderMap::new();
        request.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{}", etag.to_str().unwrap())).unwrap(),
        );
        assert_eq!(serve("app.css", &request).status(), StatusCode::NOT_MODIFIED);
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"stale\""));
        assert_eq!(serve("app.css", &request).status(), StatusCode::OK);
    }

    #[test]
    fn vendored_files_are_cached_for_long_the_page_is_revalidated() {
        let none = HeaderMap::new();
        let vendor = serve("vendor/chart.js-4.6.2/chart.umd.min.js", &none);
        assert_eq!(vendor.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
        assert_eq!(serve("index.html", &none).headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(serve("../Cargo.toml", &none).status(), StatusCode::NOT_FOUND);
    }
}
