//! Runs started from the page: naive and atomic with the race forced on 2 workers, the bench sweep,
//! the anomaly matrix. What the page shows is compared with `GET /experiments/{id}` of the same run,
//! number by number, and the lost update must be drawn for naive (and for nothing else); optimistic
//! draws its conflict and the retry that follows it.

use std::time::Duration;

use fantoccini::Locator;
use racelab_testkit::{TestDb, on_every_backend, on_server_backends};
use serde_json::{Value, json};

use super::driver::{Browser, DESKTOP, PHONE};
use crate::support::service::{Raw, TestApp, read_answer, spawn_app, spawn_app_with_lock_timeout};

/// A run of 2 workers x 10 increments takes milliseconds; the bound is for a loaded machine.
const RUN: Duration = Duration::from_secs(120);

/// The verdict table's numeric columns: the `data-field` of a cell, and where the JSON keeps it.
const FIELDS: [(&str, &str); 11] = [
    ("expected", "/expected"),
    ("actual", "/actual"),
    ("lost", "/lost"),
    ("dropped", "/dropped"),
    ("failed", "/failed"),
    ("in_doubt", "/in_doubt"),
    ("retries", "/retries"),
    ("elapsed_ms", "/elapsed_ms"),
    ("throughput_per_s", "/throughput_per_s"),
    ("latency_ms.p50", "/latency_ms/p50"),
    ("latency_ms.p99", "/latency_ms/p99"),
];

/// The rows of a verdict table as the page shows them: strategy, workers and each cell's text.
const READ_TABLE: &str = r#"
    return [...document.querySelectorAll(`#${arguments[0]}-verdicts tbody tr`)].map((tr) => ({
        strategy: tr.dataset.strategy,
        workers: Number(tr.dataset.workers),
        cells: Object.fromEntries([...tr.querySelectorAll("td[data-field]")].map((td) => [td.dataset.field, td.textContent])),
    }));
"#;

/// Ticks exactly `wanted` among the form's strategies, by clicking, as a person would.
pub async fn choose_strategies(browser: &Browser, kind: &str, wanted: &[&str]) {
    for input in browser.client.find_all(Locator::Css(&format!("#form-{kind} input[name=strategies]"))).await.unwrap() {
        let name = input.attr("value").await.unwrap().expect("a strategy checkbox has a value");
        let ticked = input.is_selected().await.unwrap();
        if ticked != wanted.contains(&name.as_str()) {
            input.click().await.unwrap_or_else(|e| panic!("click {name}: {e}"));
        }
    }
}

/// Fills the lab form: these strategies, 2 workers x `increments`, the race forced or not.
async fn fill_the_lab(browser: &Browser, strategies: &[&str], increments: u32, force_race: bool) {
    choose_strategies(browser, "lab", strategies).await;
    fill(browser, "#lab-workers", "2").await;
    fill(browser, "#lab-increments", &increments.to_string()).await;
    tick(browser, "#lab-force_race", force_race).await;
}

pub async fn fill(browser: &Browser, selector: &str, text: &str) {
    let input = browser.client.find(Locator::Css(selector)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

pub async fn tick(browser: &Browser, selector: &str, on: bool) {
    let input = browser.client.find(Locator::Css(selector)).await.unwrap();
    if input.is_selected().await.unwrap() != on {
        input.click().await.unwrap();
    }
}

/// Clicks Run, waits until the run has ended, and returns its id (from the page's URL) and its JSON.
pub async fn run_from_the_page(browser: &Browser, app: &TestApp, kind: &str) -> (String, Value) {
    browser.client.find(Locator::Css(&format!("#{kind}-run"))).await.unwrap().click().await.unwrap();
    // Any end, so a run that failed is reported with its JSON (its error) rather than as a timeout.
    let ended = ["finished", "failed", "stopped"].map(|state| format!(r#"#{kind}-state[data-run-state="{state}"]"#));
    browser.wait_for(&ended.join(", "), RUN).await;
    let url = browser.client.current_url().await.unwrap();
    let id = url.path().strip_prefix("/runs/").unwrap_or_else(|| panic!("the run has no URL of its own: {url}"));
    let run = app.ok(&format!("/experiments/{id}")).await;
    assert_eq!(run["state"], "finished", "{run}");
    (id.to_owned(), run)
}

/// Every result of the JSON is a row of the page's table, with the same numbers; and nothing else is.
pub async fn assert_table_matches(browser: &Browser, kind: &str, run: &Value) {
    let rows = browser.js(READ_TABLE, vec![json!(kind)]).await;
    let rows = rows.as_array().expect("rows");
    let results = run["results"].as_array().expect("results");
    assert_eq!(rows.len(), results.len(), "rows on the page: {rows:?}\nresults: {results:?}");
    for result in results {
        let row = rows
            .iter()
            .find(|r| r["strategy"] == result["strategy"] && r["workers"] == result["workers"])
            .unwrap_or_else(|| {
                panic!("no row for {} x {} on the page: {rows:?}", result["strategy"], result["workers"])
            });
        for (field, pointer) in FIELDS {
            let shown = row["cells"][field].as_str().unwrap_or_else(|| panic!("no `{field}` cell: {row}"));
            let json = result.pointer(pointer).unwrap_or_else(|| panic!("no {pointer} in {result}"));
            let same = match json {
                Value::Null => shown == "—",
                Value::Number(n) => shown.parse::<f64>().ok() == n.as_f64(),
                other => panic!("{pointer} is {other}, not a number"),
            };
            assert!(same, "{} {field}: the page shows {shown}, the JSON has {json}", result["strategy"]);
        }
    }
}

/// The lost updates drawn for `strategy`: as many as the trace's commits marked `overwrote`.
async fn assert_lost_updates_drawn(browser: &Browser, run: &Value, strategy: &str) -> usize {
    let trace = run["traces"]
        .as_array()
        .expect("traces")
        .iter()
        .find(|t| t["strategy"] == strategy)
        .unwrap_or_else(|| panic!("no trace of {strategy}: {}", run["traces"]));
    let overwrites = trace["events"].as_array().unwrap().iter().filter(|e| !e["overwrote"].is_null()).count();
    let selector = format!(r#".timeline[data-strategy="{strategy}"]"#);
    browser.wait_for(&selector, RUN).await;
    let drawn = browser.client.find_all(Locator::Css(&format!("{selector} .ev.lost-update"))).await.unwrap();
    assert_eq!(drawn.len(), overwrites, "{strategy}: lost updates drawn vs marked in the trace");
    for mark in drawn {
        assert!(mark.is_displayed().await.unwrap(), "{strategy}: a lost update is drawn but hidden");
        let text = mark.text().await.unwrap();
        assert!(text.contains("LOST UPDATE: overwrote worker"), "{strategy}: {text}");
    }
    overwrites
}

async fn naive_and_atomic_with_the_race_forced(test: TestDb) {
    let app = spawn_app(&test).await;
    let browser = Browser::on_the_page(&app.address, RUN).await;

    fill_the_lab(&browser, &["naive", "atomic"], 10, true).await;
    let (id, run) = run_from_the_page(&browser, &app, "lab").await;

    assert_eq!(run["request"]["strategies"], json!(["naive", "atomic"]), "{run}");
    assert_table_matches(&browser, "lab", &run).await;
    assert!(assert_lost_updates_drawn(&browser, &run, "naive").await >= 1, "naive with the race forced lost nothing");
    assert_eq!(assert_lost_updates_drawn(&browser, &run, "atomic").await, 0);
    for chart in ["chart-counts", "chart-throughput", "chart-latency"] {
        let drawn = browser.js(&format!("return Boolean(window.Chart.getChart('{chart}'));"), vec![]).await;
        assert_eq!(drawn, json!(true), "{chart} not drawn");
    }

    let name = format!("lab-{}", test.backend);
    browser.screenshots(&format!("{name}-{}", DESKTOP.name)).await;
    // The results and the start of the interleaving, small: what docs/page.png shows.
    browser.screenshot_of("#panel-lab", &format!("{name}-results"), 1500.0, 0.6).await;
    browser.set_viewport(PHONE).await;
    let overflow = browser.overflowing().await;
    assert_eq!(overflow["scroll"], json!(0), "the results are wider than a 390-px phone: {overflow}");
    browser.screenshots(&format!("{name}-{}", PHONE.name)).await;

    // The run's URL shows it again, from a fresh load.
    browser.set_viewport(DESKTOP).await;
    browser.open(&format!("/runs/{id}")).await;
    browser.wait_for(r#"#lab-state[data-run-state="finished"]"#, RUN).await;
    assert_table_matches(&browser, "lab", &run).await;
    assert!(assert_lost_updates_drawn(&browser, &run, "naive").await >= 1);
    browser.assert_no_errors(&[]).await;
}

/// The events of `kind` drawn in `strategy`'s timeline: as many as its trace has, and at least one.
async fn assert_events_drawn(browser: &Browser, run: &Value, strategy: &str, kind: &str) -> usize {
    let trace = run["traces"].as_array().expect("traces").iter().find(|t| t["strategy"] == strategy).expect("a trace");
    let traced = trace["events"].as_array().unwrap().iter().filter(|e| e["kind"] == kind).count();
    let selector = format!(r#".timeline[data-strategy="{strategy}"] .ev-{kind}"#);
    let drawn = browser.client.find_all(Locator::Css(&selector)).await.unwrap();
    assert_eq!(drawn.len(), traced, "{strategy}: {kind} events drawn vs traced");
    assert!(traced >= 1, "{strategy}: no {kind} in the trace: {trace}");
    traced
}

// Optimistic with the race forced: both workers read the same version, so one write finds the row
// changed (a conflict) and that increment is tried again (a retry), every time; nothing is lost.
async fn optimistic_draws_its_conflict_and_retry(test: TestDb) {
    let app = spawn_app(&test).await;
    let browser = Browser::on_the_page(&app.address, RUN).await;

    fill_the_lab(&browser, &["optimistic"], 10, true).await;
    let (_, run) = run_from_the_page(&browser, &app, "lab").await;

    assert_table_matches(&browser, "lab", &run).await;
    assert_eq!(run["results"][0]["lost"], json!(0), "{run}");
    assert!(assert_events_drawn(&browser, &run, "optimistic", "conflict").await >= 1);
    assert!(assert_events_drawn(&browser, &run, "optimistic", "retry").await >= 1);
    assert_eq!(assert_lost_updates_drawn(&browser, &run, "optimistic").await, 0);
    browser.assert_no_errors(&[]).await;
}

on_every_backend!(naive_and_atomic_with_the_race_forced, optimistic_draws_its_conflict_and_retry);

async fn the_bench_sweep(test: TestDb) {
    let app = spawn_app(&test).await;
    let browser = Browser::on_the_page(&app.address, RUN).await;
    browser.client.find(Locator::Css("#tab-bench")).await.unwrap().click().await.unwrap();

    choose_strategies(&browser, "bench", &["naive", "atomic"]).await;
    fill(&browser, "#bench-workers", "1, 2").await;
    fill(&browser, "#bench-increments", "20").await;
    let (_, run) = run_from_the_page(&browser, &app, "bench").await;

    assert_eq!(run["request"]["workers"], json!([1, 2]), "{run}");
    assert_eq!(run["results"].as_array().map(Vec::len), Some(4), "{run}");
    assert_table_matches(&browser, "bench", &run).await;
    let axes = browser
        .js(
            "return ['chart-bench-throughput', 'chart-bench-p99'].map((id) => window.Chart.getChart(id)?.options.scales.y.type);",
            vec![],
        )
        .await;
    assert_eq!(axes, json!(["linear", "logarithmic"]), "throughput on a linear axis, p99 on a log axis");
    let followed = browser.js("return document.getElementById('run-bench').dataset.streamEnd;", vec![]).await;
    assert_eq!(followed, json!("1"), "the page did not follow the run's event stream to its end");
    browser.screenshots(&format!("bench-{}-{}", test.backend, DESKTOP.name)).await;
    browser.assert_no_errors(&[]).await;
}

on_every_backend!(the_bench_sweep);

async fn the_anomaly_matrix(test: TestDb) {
    let app = spawn_app(&test).await;
    let browser = Browser::on_the_page(&app.address, RUN).await;
    browser.client.find(Locator::Css("#tab-anomalies")).await.unwrap().click().await.unwrap();
    let (_, run) = run_from_the_page(&browser, &app, "anomalies").await;

    // Every cell of the JSON's matrix is on the page with its verdict, and no other.
    let shown = browser
        .js(
            "return [...document.querySelectorAll('#anomaly-matrix td[data-verdict]')].map((td) => \
             `${td.closest('tr').dataset.case}@${td.dataset.level}=${td.dataset.verdict}`).sort();",
            vec![],
        )
        .await;
    let mut expected: Vec<String> = run["anomalies"]["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .flat_map(|column| {
            column["cells"].as_array().into_iter().flatten().map(move |cell| {
                format!(
                    "{}@{}={}",
                    cell["case"].as_str().unwrap(),
                    column["level"].as_str().unwrap(),
                    cell["verdict"].as_str().unwrap()
                )
            })
        })
        .collect();
    expected.sort();
    assert!(!expected.is_empty(), "the run has no cells: {run}");
    assert_eq!(shown, json!(expected));

    // A cell opens its schedule: as many steps as the JSON has.
    let first = &run["anomalies"]["columns"][0]["cells"][0];
    browser.client.find(Locator::Css("#anomaly-matrix td[data-verdict] button")).await.unwrap().click().await.unwrap();
    let steps = browser.client.find_all(Locator::Css("#anomaly-steps li")).await.unwrap();
    assert_eq!(steps.len(), first["steps"].as_array().map_or(0, Vec::len), "steps of {}", first["case"]);
    browser.screenshots(&format!("anomalies-{}-{}", test.backend, DESKTOP.name)).await;
    browser.assert_no_errors(&[]).await;
}

on_every_backend!(the_anomaly_matrix);

/// A pessimistic run of 2 workers x `increments` on post 1, started from the page while the test holds
/// the post's row lock, and its workers seen waiting for it. Returns the service, the lock's holder and
/// the browser.
async fn start_a_held_run(test: &TestDb, increments: u32) -> (TestApp, Raw, Browser) {
    // Long enough that the workers wait for the test, not for their lock timeout.
    let app = spawn_app_with_lock_timeout(&test.url, Duration::from_secs(60)).await;
    app.ok("/test-db/init").await;
    let mut holder = Raw::connect(test).await;
    holder.hold_row_lock(1).await;

    let browser = Browser::on_the_page(&app.address, RUN).await;
    fill_the_lab(&browser, &["pessimistic"], increments, false).await;
    fill(&browser, "#lab-post", "1").await;
    browser.client.find(Locator::Css("#lab-run")).await.unwrap().click().await.unwrap();
    Raw::connect(test).await.wait_for_lock_waiter().await;
    (app, holder, browser)
}

/// Progress is shown live, from the stream, while the run is held (deterministically: the test holds
/// the row lock the pessimistic workers wait for); then the wait is drawn in the interleaving.
async fn progress_is_live_and_the_wait_is_drawn(test: TestDb) {
    let (app, mut holder, browser) = start_a_held_run(&test, 5).await;

    // While the test holds the row: running, a progress row for pessimistic, from the stream.
    browser.wait_for(r#"#lab-state[data-run-state="running"]"#, RUN).await;
    browser.wait_for(r#"#lab-progress tr[data-strategy="pessimistic"]"#, RUN).await;
    browser.wait_for("#run-lab[data-stream-progress]", RUN).await;
    let acknowledged = browser
        .js(r#"return document.querySelector('#lab-progress tr[data-strategy="pessimistic"] progress').value;"#, vec![])
        .await;
    assert_eq!(acknowledged, json!(0), "nothing can be acknowledged while the test holds the row");
    browser.screenshots(&format!("progress-{}-{}", test.backend, DESKTOP.name)).await;

    holder.execute("COMMIT").await;
    browser.wait_for(r#"#lab-state[data-run-state="finished"]"#, RUN).await;
    let id = browser.client.current_url().await.unwrap().path().trim_start_matches("/runs/").to_owned();
    let run = app.ok(&format!("/experiments/{id}")).await;
    assert_table_matches(&browser, "lab", &run).await;
    let waits =
        run["traces"][0]["events"].as_array().expect("a trace").iter().filter(|e| e["kind"] == "lock_wait").count();
    assert!(waits >= 2, "both workers waited for the test's lock: {}", run["traces"]);
    let drawn =
        browser.client.find_all(Locator::Css(r#".timeline[data-strategy="pessimistic"] .ev-lock_wait"#)).await.unwrap();
    assert_eq!(drawn.len(), waits, "lock waits drawn vs traced");
    browser.assert_no_errors(&[]).await;
}

/// Stop, from the page, a run held behind the test's row lock: the page shows it `stopped` once the
/// lock is released, with the numbers of the run's JSON (the increments in flight made, the rest
/// counted stopped), and the Stop button is gone.
async fn a_run_is_stopped_from_the_page(test: TestDb) {
    let (app, mut holder, browser) = start_a_held_run(&test, 50).await;
    browser.wait_for(r#"#lab-state[data-run-state="running"]"#, RUN).await;

    browser.wait_for("#lab-stop", RUN).await;
    browser.client.find(Locator::Css("#lab-stop")).await.unwrap().click().await.unwrap();
    browser.wait_for("#lab-stop[disabled]", RUN).await;
    holder.execute("COMMIT").await;
    browser.wait_for(r#"#lab-state[data-run-state="stopped"]"#, RUN).await;

    let id = browser.client.current_url().await.unwrap().path().trim_start_matches("/runs/").to_owned();
    let run = app.ok(&format!("/experiments/{id}")).await;
    assert_eq!(run["state"], "stopped", "{run}");
    let stopped = run["results"][0]["errors"]["stopped"].as_u64().unwrap_or(0);
    assert!(stopped >= 98, "at most the 2 increments in flight were made: {run}");
    assert_table_matches(&browser, "lab", &run).await;
    assert!(browser.client.find_all(Locator::Css("#lab-stop")).await.unwrap().is_empty(), "Stop is still shown");
    browser.assert_no_errors(&[]).await;
}

on_server_backends!(progress_is_live_and_the_wait_is_drawn, a_run_is_stopped_from_the_page);

/// The form of `kind` as the page shows it: each field's value, and the strategies ticked.
const READ_FORM: &str = r#"
    const form = document.querySelector(`#form-${arguments[0]}`);
    const e = form.elements;
    return {
        strategies: [...form.querySelectorAll("input[name=strategies]:checked")].map((i) => i.value),
        workers: e.workers.value, increments: e.increments.value, lock_mode: e.lock_mode.value,
        post: e.post.value, force_race: e.force_race.checked,
    };
"#;

// A run's own URL, opened fresh (another person given the link), shows the settings that run was
// asked for in the form, not the form's defaults: Run there does the same run again.
async fn a_run_url_shows_its_own_settings(test: TestDb) {
    let app = spawn_app(&test).await;
    let request = json!({"kind": "lab", "strategies": ["pessimistic-nowait"], "workers": 3, "increments": 7,
        "force_race": true, "post": 42});
    let answer =
        read_answer(app.client.post(format!("{}/experiments", app.address)).json(&request).send().await.expect("POST"))
            .await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    let id = answer.body["id"].as_str().expect("an id").to_owned();

    let browser = Browser::on_the_page(&app.address, RUN).await;
    browser.open(&format!("/runs/{id}")).await;
    browser.wait_for(r#"#lab-state[data-run-state="finished"], #lab-state[data-run-state="failed"]"#, RUN).await;
    let form = browser.js(READ_FORM, vec![json!("lab")]).await;
    assert_eq!(
        form,
        json!({"strategies": ["pessimistic"], "workers": "3", "increments": "7", "lock_mode": "nowait",
            "post": "42", "force_race": true}),
        "the form of /runs/{id}"
    );
    browser.assert_no_errors(&[]).await;
}

on_every_backend!(a_run_url_shows_its_own_settings);
