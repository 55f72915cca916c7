//! The protection every HTML page of the service carries, whichever handler or crate made it: a
//! `Content-Security-Policy` that lets the page load from this server only and forbids framing it
//! (`frame-ancestors 'none'`, with `X-Frame-Options: DENY` for browsers older than CSP level 2), and
//! `X-Content-Type-Options: nosniff` on every answer, so no browser reads a JSON or script answer
//! as a page.
//!
//! A page with needs of its own sets its own policy (`/` for Chart.js, `/redoc` for ReDoc's worker
//! and styles); a page that sets none, the Swagger UI at `/docs/` (utoipa-swagger-ui serves it and has
//! no hook for headers), gets [`PAGE_POLICY`]. It must never loosen a policy a handler set: it only
//! adds `frame-ancestors 'none'` to one that lacks it.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of a page that sets none: what the vendored Swagger UI (5.32.6) needs, all from this
/// server. Its `index.html` has no inline script or style (its scripts, the configuration in
/// `swagger-initializer.js` included, and its stylesheets are files), so scripts need neither
/// `'unsafe-inline'` nor a hash. One inline style it has: the `<style>` element of the Swagger logo
/// in its top bar (in `swagger-ui-standalone-preset.js`), allowed by its hash alone (a test holds the
/// text; `printf %s "$text" | openssl dgst -sha256 -binary | base64` gives the hash); the styles it sets through the DOM (React) are not governed by a policy. Images: the icons
/// its stylesheet inlines as `data:` URLs, and `blob:` for an image answer shown by "Try it out".
/// Requests (the document, "Try it out") go to this server only.
pub const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; img-src 'self' data: blob:; \
font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What every policy ends with: no site, this one included, may frame a page (clickjacking).
const NO_FRAMING: &str = "frame-ancestors 'none'";

/// Adds the headers to every answer on its way out.
pub async fn protect(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    protect_headers(response.headers_mut());
    response
}

/// `nosniff` on every answer; on an HTML one, a policy (the handler's, or [`PAGE_POLICY`]) that
/// forbids framing, and `X-Frame-Options: DENY`.
fn protect_headers(headers: &mut HeaderMap) {
    headers.entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
    if !is_html(headers) {
        return;
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let policy = match headers.get(header::CONTENT_SECURITY_POLICY).map(HeaderValue::to_str) {
        None => HeaderValue::from_static(PAGE_POLICY),
        Some(Ok(own)) if own.contains("frame-ancestors") => return,
        Some(Ok(own)) => HeaderValue::from_str(&format!("{own}; {NO_FRAMING}"))
            .unwrap_or_else(|_| HeaderValue::from_static(PAGE_POLICY)),
        // A policy that is not text cannot be extended: the strict one replaces it.
        Some(Err(_)) => HeaderValue::from_static(PAGE_POLICY),
    };
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
}

/// Whether the answer is an HTML page (`text/html`, parameters aside, in any case).
fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(content_type: &str, policy: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        if let Some(policy) = policy {
            headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
        }
        protect_headers(&mut headers);
        headers
    }

    #[test]
    fn a_page_without_a_policy_gets_the_strict_one_and_cannot_be_framed() {
        let headers = with("Text/HTML; charset=utf-8", None);
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], PAGE_POLICY);
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!PAGE_POLICY.contains("unsafe") && !PAGE_POLICY.contains("http:") && !PAGE_POLICY.contains('*'));
    }

    #[test]
    fn a_page_s_own_policy_is_kept_and_made_to_forbid_framing() {
        let own = "default-src 'self'; frame-ancestors 'none'";
        assert_eq!(with("text/html", Some(own))[header::CONTENT_SECURITY_POLICY], own);
        let extended = with("text/html", Some("default-src 'self'"));
        assert_eq!(extended[header::CONTENT_SECURITY_POLICY], "default-src 'self'; frame-ancestors 'none'");
    }

    /// The text of the Swagger logo's `<style>` element, whose hash [`PAGE_POLICY`] allows. A new
    /// Swagger UI with another logo style fails here: the hash must follow it.
    const SWAGGER_LOGO_STYLE: &str = ".logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}";

    #[test]
    fn the_only_inline_style_of_the_vendored_swagger_ui_is_the_one_hashed() {
        let config = std::sync::Arc::new(utoipa_swagger_ui::Config::default());
        let preset = utoipa_swagger_ui::serve("swagger-ui-standalone-preset.js", config).unwrap().unwrap();
        let preset = String::from_utf8_lossy(&preset.bytes);
        let styles: Vec<&str> =
            preset.split("createElement(\"style\",null,\"").skip(1).filter_map(|s| s.split('"').next()).collect();
        assert_eq!(styles, [SWAGGER_LOGO_STYLE]);
        assert!(PAGE_POLICY.contains("'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"), "{PAGE_POLICY}");
    }

    #[test]
    fn other_answers_get_nosniff_only() {
        let json = with("application/json", None);
        assert_eq!(json[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(json.get(header::CONTENT_SECURITY_POLICY).is_none() && json.get(header::X_FRAME_OPTIONS).is_none());
    }
}
