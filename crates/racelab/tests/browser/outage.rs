//! The database goes away (a proxy the test cuts between the service and the server): the page says
//! so, clearly, with the 503; it comes back: the page sees it by itself and lets runs start again.

use std::time::Duration;

use racelab_testkit::{TestDb, on_server_backends};

use crate::driver::{Browser, DESKTOP};
use crate::helpers::{TcpProxy, spawn_app_at};

const WAIT: Duration = Duration::from_secs(30);

async fn the_page_shows_the_outage_and_recovers(test: TestDb) {
    let (upstream, rewrite) = TcpProxy::route(&test.url);
    let proxy = TcpProxy::start(upstream).await;
    let app = spawn_app_at(&rewrite(proxy.port), Duration::from_secs(1)).await;
    let browser = Browser::start(&app.address).await;
    browser.set_viewport(DESKTOP).await;
    browser.open("/").await;
    browser.wait_for(r#"#db-state[data-ready="true"]"#, WAIT).await;

    proxy.cut();
    browser.client.refresh().await.unwrap();
    let banner = browser.wait_for("#db-banner:not([hidden])", WAIT).await;
    let text = banner.text().await.unwrap();
    assert!(text.contains("503") && text.contains("Database unavailable"), "banner: {text}");
    browser.wait_for(r#"#db-state[data-ready="false"]"#, WAIT).await;
    assert!(
        browser.js("return document.getElementById('lab-run').disabled;", vec![]).await == true,
        "Run stays enabled"
    );
    browser.screenshots(&format!("outage-{}-{}", test.backend, DESKTOP.name)).await;

    proxy.restore();
    browser.wait_for("#db-banner[hidden]", WAIT).await;
    browser.wait_for(r#"#db-state[data-ready="true"]"#, WAIT).await;
    assert!(
        browser.js("return document.getElementById('lab-run').disabled;", vec![]).await == false,
        "Run still disabled"
    );
    // The only errors: the 503 answers the test caused, which the browser's log does show (so the
    // log is read, and an error would be seen).
    let errors = browser.errors(&[]).await;
    assert!(errors.iter().any(|e| e.contains("status of 503")), "the browser logged no 503: {errors:?}");
    browser.assert_no_errors(&["status of 503"]).await;
}

on_server_backends!(the_page_shows_the_outage_and_recovers);
