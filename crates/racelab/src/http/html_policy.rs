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

/// The policy of a page that sets none: what the vendored Swagger UI needs, all from this server.
/// Its `index.html` has no inline script or style (its scripts, the configuration in
/// `swagger-initializer.js` included, and its stylesheets are files), so neither `'unsafe-inline'`
/// nor a hash is needed; its inline styles are set through the DOM (React), which a policy does not
/// govern. Images: the icons its stylesheet inlines as `data:` URLs, and `blob:` for an image answer
/// shown by "Try it out". Requests (the document, "Try it out") go to this server only.
pub const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

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
        assert!(!PAGE_POLICY.contains("unsafe") && !PAGE_POLICY.contains("http") && !PAGE_POLICY.contains('*'));
    }

    #[test]
    fn a_page_s_own_policy_is_kept_and_made_to_forbid_framing() {
        let own = "default-src 'self'; frame-ancestors 'none'";
        assert_eq!(with("text/html", Some(own))[header::CONTENT_SECURITY_POLICY], own);
        let extended = with("text/html", Some("default-src 'self'"));
        assert_eq!(extended[header::CONTENT_SECURITY_POLICY], "default-src 'self'; frame-ancestors 'none'");
    }

    #[test]
    fn other_answers_get_nosniff_only() {
        let json = with("application/json", None);
        assert_eq!(json[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(json.get(header::CONTENT_SECURITY_POLICY).is_none() && json.get(header::X_FRAME_OPTIONS).is_none());
    }
}
