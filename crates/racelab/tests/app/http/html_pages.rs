//! Every HTML page the service serves (the page at `/`, ReDoc, the Swagger UI and its files) carries
//! a `Content-Security-Policy` that allows this server only and forbids framing, with `nosniff` and
//! `X-Frame-Options: DENY`; and the Swagger UI needs nothing the policy refuses (no inline script or
//! style, no validator badge from swagger.io).

use racelab_core::Backend;
use racelab_testkit::TestDb;

use crate::support::service::{Answer, spawn_app};

/// Every path answered with HTML: the page and a run's page, ReDoc, and what utoipa-swagger-ui
/// serves as HTML (reqwest follows `/docs` to `/docs/`).
const PAGES: [&str; 7] =
    ["/", "/runs/4f7c2a", "/redoc", "/docs", "/docs/", "/docs/index.html", "/docs/oauth2-redirect.html"];

#[tokio::test]
async fn every_html_page_has_a_policy_that_forbids_framing_and_outside_sources() {
    racelab_testkit::run(Backend::Sqlite, html_pages).await;
}

async fn html_pages(test: TestDb) {
    let app = spawn_app(&test).await;
    for path in PAGES {
        let page = app.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        assert!(page.content_type.starts_with("text/html"), "{path}: {}", page.content_type);
        assert_protected(path, &page);
    }
    // Not pages: nosniff all the same, so no browser reads them as one.
    for path in ["/health", "/openapi.json", "/docs/swagger-ui-bundle.js", "/assets/app.js"] {
        let answer = app.get(path).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(header(&answer, "x-content-type-options"), Some("nosniff"), "{path}");
    }
}

/// The headers every HTML page must carry.
fn assert_protected(path: &str, page: &Answer) {
    assert_eq!(header(page, "x-content-type-options"), Some("nosniff"), "{path}");
    assert_eq!(header(page, "x-frame-options"), Some("DENY"), "{path}");
    let policy = header(page, "content-security-policy").unwrap_or_else(|| panic!("{path} has no policy"));
    assert!(directive(policy, "frame-ancestors") == Some("'none'"), "{path} may be framed: {policy}");
    assert!(!policy.contains("http") && !policy.contains('*'), "{path} allows outside sources: {policy}");
    assert!(!policy.contains("unsafe-eval"), "{path} allows evaluated scripts: {policy}");
    let scripts = directive(policy, "script-src").or_else(|| directive(policy, "default-src"));
    let scripts = scripts.unwrap_or_else(|| panic!("{path}: no script-src nor default-src in {policy}"));
    assert!(!scripts.contains("unsafe"), "{path} allows inline or evaluated scripts: {policy}");
    assert!(directive(policy, "base-uri") == Some("'none'"), "{path}: {policy}");
}

#[tokio::test]
async fn the_swagger_ui_needs_nothing_its_policy_refuses() {
    racelab_testkit::run(Backend::Sqlite, swagger_under_its_policy).await;
}

/// What a browser would refuse under the policy, looked for in what the Swagger UI serves: inline
/// scripts, styles and event handlers in its page, files from elsewhere, and the validator badge
/// (an image from validator.swagger.io, sent the document's URL).
async fn swagger_under_its_policy(test: TestDb) {
    let app = spawn_app(&test).await;
    let page = app.get("/docs/").await;
    let policy = header(&page, "content-security-policy").expect("a policy").to_owned();
    for (name, sources) in [
        ("script-src", "'self'"),
        // The one inline style, the logo's `<style>` in the top bar, by its hash (see `html_policy`).
        ("style-src", "'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"),
        ("connect-src", "'self'"),
        ("img-src", "'self' data: blob:"),
    ] {
        assert_eq!(directive(&policy, name), Some(sources), "{policy}");
    }

    let html = page.text.to_ascii_lowercase();
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert!(scripts.len() >= 3, "{html}");
    for script in scripts {
        let (tag, rest) = script.split_once('>').unwrap_or_else(|| panic!("unclosed script tag in {html}"));
        assert!(tag.contains("src=\"./"), "a script that is not a file of this server: <script{tag}>");
        assert!(rest.trim_start().starts_with("</script>"), "an inline script: <script{script}");
    }
    assert!(!html.contains("<style"), "an inline style element: {html}");
    assert!(!html.contains(" style="), "an inline style attribute: {html}");
    assert!(!html.split_whitespace().any(|word| word.starts_with("on") && word.contains('=')), "an inline handler");

    // Every file the page names is served from here, as what it is, and protected from sniffing.
    let targets = ["src=\"", "href=\""]
        .into_iter()
        .flat_map(|attribute| html.split(attribute).skip(1).map(|rest| rest.split('"').next().unwrap_or_default()));
    for target in targets {
        assert!(!target.contains(':') && !target.starts_with("//"), "a file from elsewhere: {target}");
        let file = app.get(&format!("/docs/{}", target.trim_start_matches("./"))).await;
        assert_eq!(file.status, 200, "{target}");
        let expected = if target.ends_with(".js") {
            "javascript"
        } else if target.ends_with(".css") {
            "text/css"
        } else {
            "image/"
        };
        assert!(file.content_type.contains(expected), "{target}: {}", file.content_type);
    }

    let initializer = app.get("/docs/swagger-initializer.js").await;
    assert!(initializer.text.contains("\"validatorUrl\": \"none\""), "{}", initializer.text);
    let bundle = app.get("/docs/swagger-ui-bundle.js").await;
    assert!(!bundle.text.contains("eval("), "the bundle evaluates strings, which script-src 'self' refuses");
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The sources of one directive of a policy.
fn directive<'a>(policy: &'a str, name: &str) -> Option<&'a str> {
    policy.split(';').map(str::trim).find_map(|d| d.strip_prefix(name)?.strip_prefix(' '))
}
