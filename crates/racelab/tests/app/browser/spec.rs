//! The Spec tab: a spec picked from `GET /specs` and run from the page is drawn as its run's JSON says,
//! event by event (a step waiting, then completed after waiting, with the rows it read); a spec that
//! does not parse is refused with its line and column; a server without spec runs says so (403).

use std::time::Duration;

use fantoccini::Locator;
use racelab::http::experiments::RunLimits;
use racelab_core::Backend;
use racelab_testkit::{TestDb, on_every_backend};
use serde_json::{Value, json};

use super::driver::{Browser, DESKTOP, PHONE};
use super::lab::{fill, run_from_the_page};
use crate::support::service::{Settings, spawn_app};

const LOAD: Duration = Duration::from_secs(20);

/// The spec whose first permutation makes s2_take wait for s1's row lock until s1 commits, in SQL every
/// backend takes.
const BLOCKING: &str = "row-lock.spec";

/// Each drawn permutation's rows as the page shows them: the event, its step, whether it waited, and
/// the row's text.
const READ_PERMUTATIONS: &str = r##"
    return [...document.querySelectorAll("#run-spec .spec-permutation")].map((section) =>
        [...section.querySelectorAll("tbody tr.spec-event")].map((tr) => ({
            event: tr.dataset.event,
            step: tr.dataset.step ?? null,
            waited: tr.dataset.waited === undefined ? null : tr.dataset.waited === "true",
            text: tr.textContent,
        })));
"##;

async fn a_picked_spec_is_drawn_as_it_ran(test: TestDb) {
    let app = spawn_app(&test).await;
    let listed = app.ok("/specs").await;
    let text = listed
        .as_array()
        .expect("a list")
        .iter()
        .find(|file| file["name"] == BLOCKING)
        .and_then(|file| file["text"].as_str())
        .expect("row-lock.spec is listed")
        .to_owned();

    let browser = Browser::on_the_page(&app.address, LOAD).await;
    browser.client.find(Locator::Css("#tab-spec")).await.unwrap().click().await.unwrap();
    browser.wait_for(&format!(r#"#spec-file option[value="{BLOCKING}"]"#), LOAD).await;
    browser.client.find(Locator::Css("#spec-file")).await.unwrap().select_by_value(BLOCKING).await.unwrap();
    let shown = browser.js("return document.getElementById('spec-spec').value;", vec![]).await;
    assert_eq!(shown, json!(text), "picking the spec puts its text in the box");

    let (id, run) = run_from_the_page(&browser, &app, "spec").await;
    let permutations = run["spec"]["run"]["permutations"].as_array().expect("permutations").clone();
    let drawn = browser.js(READ_PERMUTATIONS, vec![]).await;
    let drawn = drawn.as_array().expect("permutations drawn");
    assert_eq!(drawn.len(), permutations.len(), "one drawing per permutation: {drawn:?}");

    // Every event, in the run's order, with its step and its wait; each step's rows and error in its
    // row.
    let mut waited_then_done = 0;
    for (index, (permutation, rows)) in permutations.iter().zip(drawn).enumerate() {
        let events = permutation["events"].as_array().expect("events");
        let rows = rows.as_array().expect("rows");
        assert_eq!(rows.len(), events.len(), "permutation {index}: {rows:?}\n{events:?}");
        for (event, row) in events.iter().zip(rows) {
            assert_eq!(row["event"], event["event"], "permutation {index}: {row} for {event}");
            assert_eq!(row["step"], event.get("step").cloned().unwrap_or(Value::Null), "{row} for {event}");
            let text = row["text"].as_str().expect("text");
            match event["event"].as_str() {
                Some("waiting") => assert!(text.contains("waiting"), "{text}"),
                Some("done") => {
                    assert_eq!(row["waited"], event["waited"], "{row} for {event}");
                    let waited = event["waited"] == json!(true);
                    assert_eq!(text.contains("completed after waiting"), waited, "{text}");
                    if waited {
                        waited_then_done += 1;
                    }
                    for table in event["answer"]["tables"].as_array().expect("tables") {
                        for value in table["rows"].as_array().expect("rows").iter().flat_map(|r| r.as_array().unwrap())
                        {
                            assert!(text.contains(value.as_str().unwrap_or("NULL")), "{value} not in {text}");
                        }
                    }
                    if let Some(message) = event["answer"]["error"]["message"].as_str() {
                        assert!(text.contains(&format!("ERROR: {message}")), "{text}");
                    }
                }
                _ => {}
            }
        }
    }
    // The first permutation's s2_take waits for s1's row lock, drawn waiting, then completed after
    // s1_commit, on every backend (checked below from the run's JSON).
    assert!(waited_then_done >= 1, "no step drawn completed after waiting");

    // The run's own URL shows it again: the Spec tab, its text in the box and its file picked, the
    // same drawing; and the drawing fits a phone (the SQL wraps inside its column).
    browser.open(&format!("/runs/{id}")).await;
    browser.wait_for(r#"#spec-state[data-run-state="finished"]"#, LOAD).await;
    browser.wait_for(&format!(r#"#spec-file option[value="{BLOCKING}"]"#), LOAD).await;
    let again = browser.js(READ_PERMUTATIONS, vec![]).await;
    assert_eq!(&again, &Value::Array(drawn.clone()), "the run's URL draws the same");
    let form = browser
        .js("return [document.getElementById('spec-file').value, document.getElementById('spec-spec').value];", vec![])
        .await;
    assert_eq!(form, json!([BLOCKING, text]), "the run's URL shows what it ran");
    browser.set_viewport(PHONE).await;
    let overflow = browser.overflowing().await;
    assert_eq!(overflow["scroll"], json!(0), "the Spec tab is wider than a 390-px phone: {overflow}");
    browser.screenshots(&format!("spec-{}-{}", test.backend, PHONE.name)).await;
    browser.set_viewport(DESKTOP).await;

    let first = permutations[0]["events"].as_array().expect("events");
    let order: Vec<(String, bool)> = first
        .iter()
        .filter(|e| e["step"] == "s2_take" || e["step"] == "s1_commit")
        .map(|e| {
            (format!("{}:{}", e["event"].as_str().unwrap(), e["step"].as_str().unwrap()), e["waited"] == json!(true))
        })
        .collect();
    let expected = [("waiting:s2_take", false), ("done:s1_commit", false), ("done:s2_take", true)]
        .map(|(name, waited)| (name.to_owned(), waited));
    assert_eq!(order, expected, "{first:?}");
    browser.screenshots(&format!("spec-{}", test.backend)).await;
    browser.assert_no_errors(&[]).await;
}

on_every_backend!(a_picked_spec_is_drawn_as_it_ran);

/// What the parser does not take is not the database's business: SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_that_does_not_parse_shows_its_line_and_column() {
    racelab_testkit::run(Backend::Sqlite, spec_that_does_not_parse).await;
}

async fn spec_that_does_not_parse(test: TestDb) {
    let app = spawn_app(&test).await;
    let browser = Browser::on_the_page(&app.address, LOAD).await;
    browser.client.find(Locator::Css("#tab-spec")).await.unwrap().click().await.unwrap();
    browser.client.find(Locator::Css("#spec-file")).await.unwrap().select_by_value("").await.unwrap();
    fill(&browser, "#spec-spec", "session s1\nstep a { SELECT 1; }\nbogus\n").await;
    browser.client.find(Locator::Css("#spec-run")).await.unwrap().click().await.unwrap();

    let problem = browser.wait_for("#spec-problem", LOAD).await.text().await.unwrap();
    assert!(problem.contains("422") && problem.contains("line 3, column 1"), "{problem}");
    let beside = browser.client.find(Locator::Css("#spec-spec-error")).await.unwrap().text().await.unwrap();
    assert!(beside.contains("line 3, column 1"), "beside the text: {beside}");
    let invalid = browser.client.find(Locator::Css("#spec-spec")).await.unwrap().attr("aria-invalid").await.unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    assert!(browser.client.current_url().await.unwrap().path() == "/", "a refused run has no URL");
    let errors = browser.errors(&[]).await;
    let others: Vec<_> = errors.iter().filter(|e| !e.contains("status of 422")).collect();
    assert!(others.is_empty(), "the page reported errors: {others:#?}");
}

/// The switch is the server's, not the database's: SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_spec_runs_says_so() {
    racelab_testkit::run(Backend::Sqlite, server_without_spec_runs).await;
}

async fn server_without_spec_runs(test: TestDb) {
    let runs = RunLimits { spec_runs: false, ..RunLimits::default() };
    let app = Settings { runs, ..Settings::default() }.spawn(&test.url).await;
    let browser = Browser::on_the_page(&app.address, LOAD).await;
    browser.client.find(Locator::Css("#tab-spec")).await.unwrap().click().await.unwrap();
    browser.wait_for(&format!(r#"#spec-file option[value="{BLOCKING}"]"#), LOAD).await;
    browser.client.find(Locator::Css("#spec-run")).await.unwrap().click().await.unwrap();

    let problem = browser.wait_for("#spec-problem", LOAD).await.text().await.unwrap();
    assert!(problem.contains("403") && problem.contains("--no-spec-runs"), "{problem}");
    let errors = browser.errors(&[]).await;
    let others: Vec<_> = errors.iter().filter(|e| !e.contains("status of 403")).collect();
    assert!(others.is_empty(), "the page reported errors: {others:#?}");
}
