//! The database goes away (a proxy the test cuts between the service and the server): the page says
//! so, clearly, with the 503, when a run cannot start and when the page is loaded; it comes back: the
//! page sees it by itself, and a run started from it then works.

use std::time::Duration;

use fantoccini::Locator;
use racelab_testkit::{TestDb, on_server_backends};

use super::driver::{Browser, DESKTOP};
use super::lab::{assert_table_matches, choose_strategies, run_from_the_page};
use crate::support::service::{TcpProxy, spawn_app_at};

const WAIT: Duration = Duration::from_secs(30);

async fn assert_banner_says_503(browser: &Browser) {
    let banner = browser.wait_for("#db-banner:not([hidden])", WAIT).await;
    let text = banner.text().await.unwrap();
    assert!(text.contains("503") && text.contains("Database unavailable"), "banner: {text}");
    browser.wait_for(r#"#db-state[data-ready="false"]"#, WAIT).await;
    assert!(
        browser.js("return document.getElementById('lab-run').disabled;", vec![]).await == true,
        "Run stays enabled"
    );
}

async fn the_page_shows_the_outage_and_recovers(test: TestDb) {
    let (upstream, rewrite) = TcpProxy::route(&test.url);
    let proxy = TcpProxy::start(upstream).await;
    let app = spawn_app_at(&rewrite(proxy.port), Duration::from_secs(1)).await;
    let browser = Browser::on_the_page(&app.address, WAIT).await;
    choose_strategies(&browser, "lab", &["naive", "atomic"]).await;

    // A run asked for while the database is away: refused with 503, said where the run would be and
    // in the banner.
    proxy.cut();
    browser.client.find(Locator::Css("#lab-run")).await.unwrap().click().await.unwrap();
    assert_banner_says_503(&browser).await;
    let problem = browser.wait_for("#lab-problem", WAIT).await.text().await.unwrap();
    assert!(problem.contains("503"), "the run's place says: {problem}");
    browser.screenshots(&format!("outage-{}-{}", test.backend, DESKTOP.name)).await;

    // The page loaded while it is away says so too.
    browser.client.refresh().await.unwrap();
    assert_banner_says_503(&browser).await;

    proxy.restore();
    browser.wait_for("#db-banner[hidden]", WAIT).await;
    browser.wait_for(r#"#db-state[data-ready="true"]"#, WAIT).await;
    assert!(
        browser.js("return document.getElementById('lab-run').disabled;", vec![]).await == false,
        "Run still disabled"
    );
    choose_strategies(&browser, "lab", &["naive", "atomic"]).await;
    let (_, run) = run_from_the_page(&browser, &app, "lab").await;
    assert_table_matches(&browser, "lab", &run).await;

    // The only errors: the 503 answers the test caused, which the browser's log does show (so the
    // log is read, and an error would be seen). The log is emptied as it is read: read it once.
    let errors = browser.errors(&[]).await;
    assert!(errors.iter().any(|e| e.contains("status of 503")), "the browser logged no 503: {errors:?}");
    let others: Vec<_> = errors.iter().filter(|e| !e.contains("status of 503")).collect();
    assert!(others.is_empty(), "the page reported errors: {others:#?}");
}

on_server_backends!(the_page_shows_the_outage_and_recovers);
