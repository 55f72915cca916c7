//! ReDoc at `/redoc`, as FastAPI serves it (the seed had it), reading the same `/openapi.json` as the
//! Swagger UI at `/docs`. The page and the ReDoc bundle are compiled into the binary (`vendor/redoc`,
//! the npm package's standalone bundle, unchanged), so the docs work on a machine with no internet.
//!
//! The page must never make the browser fetch from elsewhere: it leaves out the Google Fonts link of
//! FastAPI's page and names system fonts instead, and its `Content-Security-Policy` allows only this
//! server (plus the `blob:` worker ReDoc's search runs in), which also stops the one outside request
//! the bundle makes on its own, the Redocly logo in the sidebar's footer (the bundle hides the image
//! when it fails to load).
//!
//! Like the Swagger UI's routes, these are not in the OpenAPI document: they serve the docs, they are
//! not the API.
//!
//! ```sh
//! cargo run --release -- serve
//! curl -s localhost:8000/redoc | head
//! ```

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::openapi::OPENAPI_PATH;

/// Where the page is served.
pub const REDOC_PATH: &str = "/redoc";
/// Where the bundle is served.
pub const BUNDLE_PATH: &str = "/redoc/redoc.standalone.js";
/// The vendored bundle's version (`vendor/redoc/README.md` says how it was taken).
pub const REDOC_VERSION: &str = "2.5.4";

/// `redoc@2.5.4`'s `bundles/redoc.standalone.js`, 1.1 MB.
static BUNDLE: &[u8] = include_bytes!("../../vendor/redoc/redoc.standalone.js");

/// What the page may load: scripts, styles, images, fonts and the document from this server only;
/// inline styles because ReDoc (styled-components) writes its CSS into `<style>` elements; images
/// and fonts also as `data:` URLs, which the bundle inlines; its search index runs in a worker
/// created from a `blob:` URL.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

/// System fonts in place of ReDoc's Montserrat and Roboto, which a browser would otherwise look for
/// (and FastAPI's page fetches from Google); JSON, as the `theme` attribute of `<redoc>` is read. It
/// sits in a single-quoted attribute, so it holds no `'` (CSS reads unquoted multi-word names).
const THEME: &str = r#"{"typography":{"fontFamily":"system-ui, -apple-system, Segoe UI, sans-serif","headings":{"fontFamily":"system-ui, -apple-system, Segoe UI, sans-serif"},"code":{"fontFamily":"ui-monospace, Menlo, Consolas, DejaVu Sans Mono, monospace"}}}"#;

/// The page and its bundle; stateless, merged into the service's router next to the Swagger UI.
pub fn routes() -> Router {
    Router::new().route(REDOC_PATH, get(page)).route(BUNDLE_PATH, get(bundle))
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        ],
        page_html(),
    )
}

async fn bundle() -> impl IntoResponse {
    // RFC 9239: `text/javascript` is the type for JavaScript.
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], BUNDLE)
}

/// The standalone bundle renders into the `<redoc>` element as soon as it loads, reading its options
/// from the element's attributes: no inline script, which the policy above would refuse anyway.
fn page_html() -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>racelab - ReDoc</title>
<meta name="generator" content="ReDoc {REDOC_VERSION}, served from the racelab binary">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="{OPENAPI_PATH}" theme='{THEME}'></redoc>
<script src="{BUNDLE_PATH}"></script>
</body>
</html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_bundle_is_the_version_named() {
        let head = std::str::from_utf8(&BUNDLE[..200.min(BUNDLE.len())]).unwrap_or_default();
        assert!(head.contains("redoc.standalone.js.LICENSE.txt"), "{head}");
        let licenses = include_str!("../../vendor/redoc/redoc.standalone.js.LICENSE.txt");
        assert!(licenses.contains(&format!("Version: \"{REDOC_VERSION}\"")), "the bundle is not {REDOC_VERSION}");
    }

    #[test]
    fn the_theme_fits_its_attribute() {
        let theme: serde_json::Value = serde_json::from_str(THEME).expect("THEME is JSON");
        assert!(theme["typography"]["fontFamily"].is_string(), "{theme}");
        // An `'` would end the attribute, an `&` would be read as an entity.
        assert!(!THEME.contains(['\'', '&']), "{THEME}");
    }
}
