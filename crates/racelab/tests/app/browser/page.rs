//! The page loads with no error, fits a desktop and a phone, is usable from the keyboard, and says
//! which database it runs on; its load time and size are measured (cold, then warm from the cache).

use std::time::Duration;

use fantoccini::Locator;
use fantoccini::key::Key;
use racelab_core::Backend;
use racelab_testkit::{TestDb, on_every_backend};
use serde_json::{Value, json};

use super::driver::{Browser, DESKTOP, PHONE, screenshots_dir};
use crate::support::service::spawn_app;

const LOAD: Duration = Duration::from_secs(20);

/// What the browser's Performance API says of the last navigation: load time and bytes on the wire.
const MEASURE: &str = r#"
    const nav = performance.getEntriesByType("navigation")[0];
    const resources = performance.getEntriesByType("resource");
    const sum = (key) => resources.reduce((total, r) => total + r[key], nav[key]);
    return {
        load_ms: Math.round(nav.loadEventEnd - nav.startTime),
        dom_content_loaded_ms: Math.round(nav.domContentLoadedEventEnd - nav.startTime),
        requests: 1 + resources.length,
        transferred_bytes: sum("transferSize"),
        decoded_bytes: sum("decodedBodySize"),
        files: [nav, ...resources].map((r) => ({ url: r.name, transferred: r.transferSize, ms: Math.round(r.duration) })),
    };
"#;

async fn measure(browser: &Browser) -> Value {
    browser.wait_until(r#"performance.getEntriesByType("navigation")[0].loadEventEnd > 0"#, LOAD).await;
    browser.js(MEASURE, vec![]).await
}

async fn page_loads_without_errors(test: TestDb) {
    let app = spawn_app(&test).await;
    let browser = Browser::start(&app.address).await;
    browser.set_viewport(DESKTOP).await;
    browser.open("/").await;
    let cold = measure(&browser).await;
    browser.wait_for(r#"#db-state[data-ready="true"]"#, LOAD).await;

    // Which database, and the strategies it supports (SQLite has no application locks).
    let state = browser.client.find(Locator::Css("#db-state")).await.unwrap().text().await.unwrap();
    assert!(state.contains(&test.backend.to_string()), "{state}");
    let advisory_shown =
        browser.js(r#"return !document.querySelector('#form-lab [data-strategy="advisory"]').hidden;"#, vec![]).await;
    assert_eq!(advisory_shown, json!(test.backend != Backend::Sqlite), "advisory offered on {}", test.backend);

    // Every field has a label; the tabs follow the arrow keys.
    let unlabelled = browser
        .js("return [...document.querySelectorAll('input, select')].filter((i) => i.labels.length === 0).map((i) => i.id);", vec![])
        .await;
    assert_eq!(unlabelled, json!([]), "fields without a label");
    browser.client.find(Locator::Css("#tab-lab")).await.unwrap().send_keys(&Key::Right.to_string()).await.unwrap();
    browser.wait_for(r#"#tab-bench[aria-selected="true"]"#, LOAD).await;
    let focused = browser.js("return document.activeElement.id;", vec![]).await;
    assert_eq!(focused, json!("tab-bench"), "the arrow key moves the focus to the tab it selects");
    assert!(browser.js("return document.getElementById('panel-lab').hidden;", vec![]).await == json!(true));
    browser.client.find(Locator::Css("#tab-bench")).await.unwrap().send_keys(&Key::Left.to_string()).await.unwrap();
    browser.wait_for(r#"#tab-lab[aria-selected="true"]"#, LOAD).await;

    let name = format!("page-{}", test.backend);
    browser.screenshots(&format!("{name}-{}", DESKTOP.name)).await;
    browser.set_viewport(PHONE).await;
    let overflow = browser.overflowing().await;
    assert_eq!(overflow["scroll"], json!(0), "the page is wider than a 390-px phone: {overflow}");
    browser.screenshots(&format!("{name}-{}", PHONE.name)).await;

    // Again, from the browser's cache: the page revalidates (304), the library is not asked for.
    browser.set_viewport(DESKTOP).await;
    browser.client.refresh().await.unwrap();
    let warm = measure(&browser).await;
    browser.wait_for(r#"#db-state[data-ready="true"]"#, LOAD).await;
    browser.assert_no_errors(&[]).await;

    let report = json!({"backend": test.backend.to_string(), "cold": cold, "warm": warm});
    let path = screenshots_dir().join(format!("page-load-{}.json", test.backend));
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).expect("write the measurements");
    println!("page load on {}: {report}", test.backend);
    let cold_bytes = cold["transferred_bytes"].as_u64().expect("a byte count");
    let warm_bytes = warm["transferred_bytes"].as_u64().expect("a byte count");
    assert!(cold_bytes > 200_000, "the cold load brings the chart library: {cold}");
    assert!(warm_bytes < cold_bytes / 4, "the warm load comes from the cache: {warm}");
}

on_every_backend!(page_loads_without_errors);

/// A value the server refuses (422 naming the member) is said beside its field, and nothing runs.
async fn bad_input_is_named_beside_its_field(test: TestDb) {
    let app = spawn_app(&test).await;
    let browser = Browser::on_the_page(&app.address, LOAD).await;
    let workers = browser.client.find(Locator::Css("#lab-workers")).await.unwrap();
    workers.clear().await.unwrap();
    workers.send_keys("0").await.unwrap();
    browser.client.find(Locator::Css("#lab-run")).await.unwrap().click().await.unwrap();

    let problem = browser.wait_for("#lab-problem", LOAD).await.text().await.unwrap();
    assert!(problem.contains("422"), "{problem}");
    let beside = browser.client.find(Locator::Css("#lab-workers-error")).await.unwrap().text().await.unwrap();
    assert!(!beside.is_empty(), "nothing said beside the workers field");
    let invalid = browser.client.find(Locator::Css("#lab-workers")).await.unwrap().attr("aria-invalid").await.unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    assert!(browser.client.current_url().await.unwrap().path() == "/", "a refused run has no URL");
    let errors = browser.errors(&[]).await;
    let others: Vec<_> = errors.iter().filter(|e| !e.contains("status of 422")).collect();
    assert!(others.is_empty(), "the page reported errors: {others:#?}");
}

on_every_backend!(bad_input_is_named_beside_its_field);

/// The Swagger UI's operations as it draws them, once it has drawn any.
const SWAGGER_OPERATIONS: &str = "return document.querySelectorAll('.opblock').length;";

// The Swagger UI at /docs/ runs under its strict policy (scripts and styles from this server only, its
// logo's one inline style by hash): it draws every operation of the served document, and the browser
// refuses nothing (a refused script or style is a SEVERE console entry). The policy does not depend on
// the database: SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_swagger_ui_runs_under_its_policy() {
    racelab_testkit::run(Backend::Sqlite, swagger_ui_under_its_policy).await;
}

async fn swagger_ui_under_its_policy(test: TestDb) {
    let app = spawn_app(&test).await;
    let document = app.ok("/openapi.json").await;
    let methods = ["get", "put", "post", "patch", "delete"];
    let operations: usize = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|path| methods.iter().filter(|m| path.get(**m).is_some()).count())
        .sum();

    let browser = Browser::start(&app.address).await;
    browser.set_viewport(DESKTOP).await;
    browser.open("/docs/").await;
    browser.wait_for(".opblock", LOAD).await;
    assert_eq!(browser.js(SWAGGER_OPERATIONS, vec![]).await, json!(operations), "operations drawn");
    let refused = browser.console_errors(&[]).await;
    assert!(refused.is_empty(), "the browser reported errors on /docs/:\n{}", refused.join("\n"));
}
