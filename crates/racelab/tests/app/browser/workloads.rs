//! The lab's workload picker: `stock` picked on the page (its invariant's sentence, its strategies with
//! the safe ones marked, its size field; the counter's lock mode and post gone), naive and conditional
//! run with the race forced, and the verdict table the page drew read back: naive's invariant broken
//! (✗, with its violations), conditional's held (✓), every number as the run's JSON has it. A value the
//! server refuses is said beside its field; going back to the counter gives the counter's form. A safe
//! strategy that broke its invariant (a trigger of the test's takes units beside its sales) stands
//! out; progress is live while the test holds the stock table. A small run's interleaving is drawn
//! from each result's trace: booking's naive, four workers racing for one slot, shows the three
//! bookings that broke the invariant and the one they raced with, as the JSON marks them; unique's
//! shows none; a run too large to be traced says so instead.

use std::time::Duration;

use fantoccini::Locator;
use racelab_core::Backend;
use racelab_testkit::{TestDb, on_every_backend, on_server_backends};
use serde_json::{Value, json};

use super::driver::{Browser, DESKTOP, PHONE};
use super::lab::{fill, run_from_the_page, tick};
use crate::support::service::{Raw, TestApp, spawn_app, spawn_app_with_lock_timeout};

/// A run of 2 workers x 3 purchases takes milliseconds; the bound is for a loaded machine.
const RUN: Duration = Duration::from_secs(120);

/// The workload verdict table as the page drew it: per row, the strategy, whether it is marked safe,
/// and each `data-field` element's text.
const READ_TABLE: &str = r##"
    return [...document.querySelectorAll("#lab-verdicts.workload-verdicts tbody tr")].map((tr) => ({
        strategy: tr.dataset.strategy,
        safe: tr.dataset.safe,
        broke: tr.classList.contains("broke"),
        cells: Object.fromEntries([...tr.querySelectorAll("[data-field]")].map((e) => [e.dataset.field, e.textContent])),
    }));
"##;

/// The workload form as the page shows it: the workload, the strategies offered (name and whether
/// marked safe) and ticked, and which fields are displayed.
const READ_FORM: &str = r##"
    const form = document.querySelector("#form-lab");
    const shown = (id) => { const e = document.getElementById(id); return Boolean(e) && e.offsetParent !== null; };
    const box = document.querySelector("#lab-workload-strategies");
    return {
        workload: form.elements.workload.value,
        invariant: document.querySelector("#lab-invariant").textContent,
        offered: box ? [...box.querySelectorAll("label.strategy")].map((l) => [l.dataset.strategy, l.dataset.safe === "true"]) : [],
        ticked: box ? [...box.querySelectorAll("input:checked")].map((i) => i.value) : [],
        shown: Object.fromEntries(["lab-strategies", "lab-lock_mode", "lab-post", "lab-isolation", "lab-stock",
            "lab-accounts", "lab-doctors", "lab-jobs", "lab-rooms", "lab-slots"].map((id) => [id, shown(id)])),
    };
"##;

/// The interleavings the page drew for a workload run, per strategy: the operations it flags (worker,
/// operation, role and the flag's words), its summary, its rows' times, the begin events' words and
/// its worker columns.
const READ_INTERLEAVING: &str = r##"
    return [...document.querySelectorAll("#lab-traces section.workload-timeline")].map((s) => ({
        strategy: s.dataset.strategy,
        summary: s.querySelector("h4 .summary").textContent,
        marked: [...s.querySelectorAll(".ev[data-role]")].map((e) => ({
            worker: Number(e.dataset.worker), op: Number(e.dataset.op), role: e.dataset.role,
            kind: e.dataset.kind, flag: e.querySelector(".flag").textContent.trim() })),
        times: [...s.querySelectorAll("tbody td.t")].map((td) => Number(td.textContent)),
        begins: [...s.querySelectorAll('.ev[data-kind="begin"]')].map((e) => e.textContent),
        workers: [...s.querySelectorAll("thead th")].slice(1).map((th) => th.textContent),
    }));
"##;

/// Picks `workload` in the lab's picker, once the page has listed it from GET /workloads.
async fn pick(browser: &Browser, workload: &str) {
    browser.wait_for(&format!(r#"#lab-workload option[value="{workload}"]"#), RUN).await;
    let select = browser.client.find(Locator::Css("#lab-workload")).await.unwrap();
    select.select_by_value(workload).await.unwrap_or_else(|e| panic!("pick {workload}: {e}"));
}

/// Ticks exactly `wanted` among the picked workload's strategies, by clicking.
async fn choose(browser: &Browser, wanted: &[&str]) {
    for input in browser.client.find_all(Locator::Css("#lab-workload-strategies input[name=strategies]")).await.unwrap()
    {
        let name = input.attr("value").await.unwrap().expect("a strategy checkbox has a value");
        if input.is_selected().await.unwrap() != wanted.contains(&name.as_str()) {
            input.click().await.unwrap_or_else(|e| panic!("click {name}: {e}"));
        }
    }
}

/// GET /workloads's entry for `name`.
async fn catalog_entry(app: &TestApp, name: &str) -> Value {
    let catalog = app.ok("/workloads").await;
    catalog.as_array().expect("a list").iter().find(|w| w["name"] == name).cloned().expect("the workload is listed")
}

/// Every result of the JSON is a row of the page's workload table with the same counts and the same
/// invariant (✓ held, ✗ broken, — unread); and nothing else is. Returns the rows.
async fn assert_table_matches(browser: &Browser, run: &Value) -> Vec<Value> {
    let rows = browser.js(READ_TABLE, vec![]).await;
    let rows = rows.as_array().expect("rows").clone();
    let results = run["results"].as_array().expect("results");
    assert_eq!(rows.len(), results.len(), "rows on the page: {rows:?}\nresults: {results:?}");
    for result in results {
        let strategy = &result["strategy"];
        let row = rows.iter().find(|r| &r["strategy"] == strategy).unwrap_or_else(|| panic!("no row for {strategy}"));
        let cell =
            |field: &str| row["cells"][field].as_str().unwrap_or_else(|| panic!("no `{field}` in {row}")).to_owned();
        for field in ["acknowledged", "refused", "failed", "in_doubt", "retries"] {
            assert_eq!(cell(field), result[field].to_string(), "{strategy} {field}: page vs JSON");
        }
        let invariant = &result["invariant"];
        let held = match &invariant["held"] {
            Value::Bool(true) => "✓",
            Value::Bool(false) => "✗",
            _ => "—",
        };
        assert_eq!(cell("invariant.held"), held, "{strategy}: {invariant}");
        let violations =
            if invariant["violations"].is_null() { "—".to_owned() } else { invariant["violations"].to_string() };
        assert_eq!(cell("invariant.violations"), violations, "{strategy}: {invariant}");
        assert_eq!(cell("invariant.detail"), invariant["detail"].as_str().unwrap(), "{strategy}");
        assert_eq!(row["safe"], json!(result["safe"].to_string()), "{strategy}: marked safe vs the JSON");
        let broke = result["safe"] == json!(true) && invariant["held"] == json!(false);
        assert_eq!(row["broke"], json!(broke), "{strategy}: a safe strategy's broken invariant stands out");
    }
    rows
}

/// Each result that carries a trace is drawn, and nothing else is: one row per event in time order,
/// a column per worker of the trace, each begin with the operation the JSON says was asked, and
/// exactly the operations of `trace.marked` flagged, each with its role's words. Returns what was
/// drawn, per strategy.
async fn assert_interleaving_matches(browser: &Browser, run: &Value) -> Vec<Value> {
    let drawn = browser.js(READ_INTERLEAVING, vec![]).await;
    let drawn = drawn.as_array().expect("interleavings").clone();
    let traced: Vec<&Value> =
        run["results"].as_array().expect("results").iter().filter(|r| r.get("trace").is_some()).collect();
    assert_eq!(drawn.len(), traced.len(), "drawn: {drawn:?}\ntraced results: {traced:?}");
    for result in traced {
        let strategy = &result["strategy"];
        let trace = &result["trace"];
        let page = drawn.iter().find(|d| &d["strategy"] == strategy).unwrap_or_else(|| panic!("{strategy} not drawn"));
        let events = trace["events"].as_array().expect("events");
        let times: Vec<f64> = page["times"].as_array().unwrap().iter().map(|t| t.as_f64().unwrap()).collect();
        assert_eq!(times.len(), events.len(), "{strategy}: one row per event: {page}");
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{strategy}: the rows are in time order: {times:?}");
        let mut workers: Vec<u64> = events.iter().map(|e| e["worker"].as_u64().unwrap()).collect();
        workers.sort_unstable();
        workers.dedup();
        let columns: Vec<String> = workers.iter().map(|w| format!("worker {w}")).collect();
        assert_eq!(page["workers"], json!(columns), "{strategy}: a column per worker");
        // A begin event names the operation asked in `operation`; its `op` is the operation's number.
        let begins_json: Vec<&Value> = events.iter().filter(|e| e["kind"] == "begin").collect();
        assert!(begins_json.iter().all(|e| e["op"].is_u64()), "{strategy}: every event's op is its number");
        let asked: Vec<&str> = begins_json.iter().map(|e| e["operation"].as_str().unwrap()).collect();
        let begins = page["begins"].as_array().unwrap();
        assert_eq!(begins.len(), asked.len(), "{strategy}: every attempt's begin is drawn: {page}");
        for (begin, op) in begins.iter().zip(&asked) {
            assert!(begin.as_str().unwrap().ends_with(&format!("begin {op}")), "{strategy}: {begin} names {op}");
        }
        let key = |m: &Value| {
            (m["worker"].as_u64().unwrap(), m["op"].as_u64().unwrap(), m["role"].as_str().unwrap().to_owned())
        };
        let mut flagged: Vec<_> = page["marked"].as_array().unwrap().iter().map(key).collect();
        let mut marked: Vec<_> = trace["marked"].as_array().expect("marked").iter().map(key).collect();
        flagged.sort();
        marked.sort();
        assert_eq!(flagged, marked, "{strategy}: the operations flagged on the page vs trace.marked");
        for m in page["marked"].as_array().unwrap() {
            let words = if m["role"] == "broke" { "✗ broke the invariant" } else { "raced with it" };
            assert_eq!(m["flag"], words, "{strategy}: {m}");
            assert_eq!(m["kind"], "acknowledged", "{strategy}: the flag is on the operation's acknowledgement: {m}");
        }
    }
    drawn
}

async fn stock_naive_breaks_its_invariant_and_conditional_keeps_it(test: TestDb) {
    let app = spawn_app(&test).await;
    let browser = Browser::on_the_page(&app.address, RUN).await;
    let stock = catalog_entry(&app, "stock").await;

    pick(&browser, "stock").await;
    let form = browser.js(READ_FORM, vec![]).await;
    assert_eq!(form["workload"], "stock");
    assert_eq!(
        form["invariant"],
        json!(format!("{}: {}", stock["invariant"].as_str().unwrap(), stock["sentence"].as_str().unwrap()))
    );
    let offered: Vec<Value> =
        stock["strategies"].as_array().unwrap().iter().map(|s| json!([s["name"], s["safe"]])).collect();
    assert_eq!(
        form["offered"],
        json!(offered),
        "the strategies offered, safe ones marked, as GET /workloads lists them"
    );
    assert_eq!(
        form["shown"],
        json!({"lab-strategies": false, "lab-lock_mode": false, "lab-post": false, "lab-isolation": true,
            "lab-stock": true, "lab-accounts": false, "lab-doctors": false, "lab-jobs": false, "lab-rooms": false,
            "lab-slots": false}),
        "stock's fields, and none of the counter's"
    );

    choose(&browser, &["naive", "conditional"]).await;
    fill(&browser, "#lab-workers", "2").await;
    fill(&browser, "#lab-increments", "3").await;
    tick(&browser, "#lab-force_race", true).await;
    let (id, run) = run_from_the_page(&browser, &app, "lab").await;

    assert_eq!(run["request"]["workload"], "stock", "{run}");
    assert_eq!(run["request"]["strategies"], json!(["naive", "conditional"]), "{run}");
    assert_eq!(run["request"]["isolation"], Value::Null, "the database's own level by default: {run}");
    let rows = assert_table_matches(&browser, &run).await;
    let held = |strategy: &str| {
        let row = rows.iter().find(|r| r["strategy"] == strategy).unwrap();
        (row["cells"]["invariant.held"].clone(), row["cells"]["invariant.violations"].clone())
    };
    // Read from the table the page drew: with the race forced, naive sold units it did not take.
    let (naive, oversold) = held("naive");
    assert_eq!(naive, "✗", "naive with the race forced kept the invariant: {run}");
    assert!(oversold.as_str().and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n >= 1), "naive: {oversold}");
    assert_eq!(held("conditional"), (json!("✓"), json!("0")), "conditional broke the invariant: {run}");
    assert!(browser.client.find_all(Locator::Css("#lab-broke")).await.unwrap().is_empty(), "no safe strategy broke");
    let followed = browser.js("return document.getElementById('run-lab').dataset.streamEnd;", vec![]).await;
    assert_eq!(followed, json!("1"), "the page did not follow the run's event stream to its end");
    // Small enough to be traced: naive's oversold purchases are flagged, conditional's none.
    let drawn = assert_interleaving_matches(&browser, &run).await;
    let flagged = |strategy: &str| drawn.iter().find(|d| d["strategy"] == strategy).unwrap()["marked"].clone();
    assert!(flagged("naive").as_array().unwrap().iter().any(|m| m["role"] == "broke"), "naive: {drawn:?}");
    assert_eq!(flagged("conditional"), json!([]), "conditional: {drawn:?}");
    assert!(browser.client.find_all(Locator::Css("#lab-no-trace")).await.unwrap().is_empty(), "every result is drawn");

    let name = format!("workload-stock-{}", test.backend);
    browser.screenshots(&format!("{name}-{}", DESKTOP.name)).await;
    browser.set_viewport(PHONE).await;
    let overflow = browser.overflowing().await;
    assert_eq!(overflow["scroll"], json!(0), "the workload's results are wider than a 390-px phone: {overflow}");
    browser.screenshots(&format!("{name}-{}", PHONE.name)).await;

    // The run's URL, loaded fresh, shows the same table and the settings it was asked for.
    browser.set_viewport(DESKTOP).await;
    browser.open(&format!("/runs/{id}")).await;
    browser.wait_for(r#"#lab-state[data-run-state="finished"]"#, RUN).await;
    browser.wait_until("document.querySelector('#form-lab').elements.workload.value === 'stock'", RUN).await;
    let form = browser.js(READ_FORM, vec![]).await;
    assert_eq!(form["ticked"], json!(["naive", "conditional"]), "the form of /runs/{id}");
    assert_table_matches(&browser, &run).await;
    browser.assert_no_errors(&[]).await;
}

on_every_backend!(stock_naive_breaks_its_invariant_and_conditional_keeps_it);

// A size the server refuses (422 naming `stock`) is said beside the stock field and nothing runs;
// going back to the counter brings its own form back, as it was.
async fn a_refused_size_is_said_beside_its_field(test: TestDb) {
    let app = spawn_app(&test).await;
    let browser = Browser::on_the_page(&app.address, RUN).await;

    pick(&browser, "stock").await;
    fill(&browser, "#lab-stock", "-1").await;
    browser.client.find(Locator::Css("#lab-run")).await.unwrap().click().await.unwrap();
    let problem = browser.wait_for("#lab-problem", RUN).await.text().await.unwrap();
    assert!(problem.contains("422"), "{problem}");
    let beside = browser.client.find(Locator::Css("#lab-stock-error")).await.unwrap().text().await.unwrap();
    assert!(beside.contains("must be an integer between 0 and"), "beside the stock field: {beside}");
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/", "a refused run has no URL of its own");

    pick(&browser, "counter").await;
    let form = browser.js(READ_FORM, vec![]).await;
    assert_eq!(
        form["invariant"],
        json!(format!("no-lost-update: {}", catalog_entry(&app, "counter").await["sentence"].as_str().unwrap()))
    );
    assert_eq!(
        form["shown"],
        json!({"lab-strategies": true, "lab-lock_mode": true, "lab-post": true, "lab-isolation": false,
            "lab-stock": false, "lab-accounts": false, "lab-doctors": false, "lab-jobs": false, "lab-rooms": false,
            "lab-slots": false}),
        "the counter's fields, and none of the workloads'"
    );
    let ticked = browser
        .js("return [...document.querySelectorAll('#lab-strategies input:checked')].map((i) => i.value);", vec![])
        .await;
    assert_eq!(ticked, json!(["naive", "atomic", "pessimistic", "optimistic"]), "the counter's defaults, untouched");
    let errors = browser.errors(&[]).await;
    let others: Vec<_> = errors.iter().filter(|e| !e.contains("status of 422")).collect();
    assert!(others.is_empty(), "the page reported errors: {others:#?}");
}

on_every_backend!(a_refused_size_is_said_beside_its_field);

// Booking's naive with the race forced, four workers for one slot: all four bookings acknowledged,
// the last three to commit broke the invariant and the first raced with them (the engine's own
// marks, read from the drawn interleaving and compared with the JSON); unique's drawing marks none.
// A run too large to be traced (11 operations) draws nothing and says why.
async fn booking_naive_shows_who_broke_the_invariant_and_who_raced(test: TestDb) {
    let app = spawn_app(&test).await;
    let browser = Browser::on_the_page(&app.address, RUN).await;

    pick(&browser, "booking").await;
    choose(&browser, &["naive", "unique"]).await;
    fill(&browser, "#lab-workers", "4").await;
    fill(&browser, "#lab-increments", "1").await;
    fill(&browser, "#lab-rooms", "1").await;
    fill(&browser, "#lab-slots", "1").await;
    tick(&browser, "#lab-force_race", true).await;
    let (id, run) = run_from_the_page(&browser, &app, "lab").await;
    assert_eq!(run["request"]["workload"], "booking", "{run}");
    assert_table_matches(&browser, &run).await;

    let drawn = assert_interleaving_matches(&browser, &run).await;
    let drawing = |strategy: &str| drawn.iter().find(|d| d["strategy"] == strategy).cloned().unwrap();
    let naive = drawing("naive");
    let roles = |role: &str| naive["marked"].as_array().unwrap().iter().filter(|m| m["role"] == role).count();
    assert_eq!((roles("broke"), roles("raced_with")), (3, 1), "naive, read from the page: {naive}");
    assert_eq!(naive["summary"], " — 3 operations broke the invariant · 1 raced with them", "{naive}");
    assert_eq!(naive["workers"], json!(["worker 0", "worker 1", "worker 2", "worker 3"]), "{naive}");
    let unique = drawing("unique");
    assert_eq!(unique["marked"], json!([]), "unique kept the invariant: nothing flagged: {unique}");
    assert!(browser.client.find_all(Locator::Css("#lab-no-trace")).await.unwrap().is_empty(), "both are drawn");

    let name = format!("workload-interleaving-{}", test.backend);
    browser.screenshot_of("#lab-traces", &name, 900.0, 1.0).await;
    browser.set_viewport(PHONE).await;
    let overflow = browser.overflowing().await;
    assert_eq!(overflow["scroll"], json!(0), "the interleaving is wider than a 390-px phone: {overflow}");
    browser.screenshots(&format!("{name}-{}", PHONE.name)).await;
    browser.set_viewport(DESKTOP).await;

    // Too large to be traced (more than 10 operations): no drawing, and the note says why.
    choose(&browser, &["unique"]).await;
    fill(&browser, "#lab-workers", "1").await;
    fill(&browser, "#lab-increments", "11").await;
    tick(&browser, "#lab-force_race", false).await;
    browser.client.find(Locator::Css("#lab-run")).await.unwrap().click().await.unwrap();
    browser
        .wait_until(&format!("location.pathname.startsWith('/runs/') && location.pathname !== '/runs/{id}'"), RUN)
        .await;
    let large = browser.client.current_url().await.unwrap().path().trim_start_matches("/runs/").to_owned();
    let note = browser.wait_for("#lab-no-trace", RUN).await.text().await.unwrap();
    assert!(note.contains("at most 4 workers × 10 operations"), "{note}");
    let run = app.ok(&format!("/experiments/{large}")).await;
    assert_eq!(run["results"][0].get("trace"), None, "an 11-operation run is not traced: {run}");
    assert_eq!(browser.js(READ_INTERLEAVING, vec![]).await, json!([]), "nothing drawn without a trace");
    browser.assert_no_errors(&[]).await;
}

on_every_backend!(booking_naive_shows_who_broke_the_invariant_and_who_raced);

/// Clicks Run and waits for the run's end, whatever it is; returns its JSON.
async fn run_to_its_end(browser: &Browser, app: &TestApp) -> Value {
    browser.client.find(Locator::Css("#lab-run")).await.unwrap().click().await.unwrap();
    let ended = ["finished", "failed", "stopped"].map(|state| format!(r#"#lab-state[data-run-state="{state}"]"#));
    browser.wait_for(&ended.join(", "), RUN).await;
    let url = browser.client.current_url().await.unwrap();
    let id = url.path().strip_prefix("/runs/").unwrap_or_else(|| panic!("the run has no URL of its own: {url}"));
    app.ok(&format!("/experiments/{id}")).await
}

/// Installs a trigger in the test's database that takes one more unit from a stock item each time a
/// sale takes one (as tests/app/http/experiments_workloads.rs does): a writer beside the run's,
/// deterministic, whose units leave the stock with no sale, so even a safe strategy's invariant breaks.
async fn take_a_unit_beside_each_sale(test: &TestDb) {
    // The app connects at its first request: the tables are made (migrated) here first.
    test.connect().await.close().await;
    let sql = racelab_testkit::fixtures::take_one_more_unit_trigger(test.backend);
    Raw::connect(test).await.execute(sql).await;
}

// A safe strategy that broke its invariant stands out: the run ends failed with the server's problem
// naming the strategy, shown above the table, and its row is marked; naive's broken invariant (it is
// not meant to hold) is shown, not flagged.
async fn a_safe_strategy_that_broke_its_invariant_stands_out(test: TestDb) {
    let app = spawn_app(&test).await;
    take_a_unit_beside_each_sale(&test).await;
    let browser = Browser::on_the_page(&app.address, RUN).await;

    pick(&browser, "stock").await;
    choose(&browser, &["naive", "conditional"]).await;
    fill(&browser, "#lab-workers", "1").await;
    fill(&browser, "#lab-increments", "3").await;
    fill(&browser, "#lab-stock", "10").await;
    tick(&browser, "#lab-force_race", false).await;
    let run = run_to_its_end(&browser, &app).await;

    assert_eq!(run["state"], "failed", "{run}");
    let rows = assert_table_matches(&browser, &run).await;
    let broke: Vec<&Value> = rows.iter().filter(|r| r["broke"] == json!(true)).map(|r| &r["strategy"]).collect();
    assert_eq!(broke, [&json!("conditional")], "the rows marked: {rows:?}");
    // The server's problem names the strategy; the page shows it once, not again in an alert of its own.
    let problem = browser.client.find(Locator::Css("#lab-error .problem")).await.unwrap().text().await.unwrap();
    let title = run["error"]["title"].as_str().expect("the run's problem has a title");
    assert!(problem.contains(title) && problem.contains("conditional"), "the run's problem is shown: {problem}");
    assert!(browser.client.find_all(Locator::Css("#lab-broke")).await.unwrap().is_empty(), "said twice");
    // Its interleaving flags no operation (none of the run's went past the stock: the trigger took
    // the units) and says so, rather than looking like a run where nothing went wrong.
    assert_interleaving_matches(&browser, &run).await;
    let said = browser
        .js(
            r#"const s = document.querySelector('#lab-traces section[data-strategy="conditional"]');
               return [s.dataset.broke, s.querySelector(".note") && s.querySelector(".note").textContent];"#,
            vec![],
        )
        .await;
    assert_eq!(said[0], "0", "{said}");
    assert!(
        said[1].as_str().is_some_and(|n| n.starts_with("The invariant broke, but no operation is marked")),
        "{said}"
    );
    browser.screenshots(&format!("workload-broke-{}-{}", test.backend, DESKTOP.name)).await;
    browser.assert_no_errors(&[]).await;
}

on_every_backend!(a_safe_strategy_that_broke_its_invariant_stands_out);

// Live progress, from the run's event stream, while the test holds the stock table (its first
// purchase's item cannot even be made): running, a progress row per strategy with its refusals
// column, nothing done; then, the table released, the verdicts.
async fn progress_is_live_while_the_test_holds_the_stock_table(test: TestDb) {
    // Long enough that the run waits for the test, not for its lock timeout.
    let app = spawn_app_with_lock_timeout(&test.url, Duration::from_secs(60)).await;
    test.connect().await.close().await;
    let mut holder = Raw::connect(&test).await;
    match test.backend {
        Backend::Postgres => {
            holder.execute("BEGIN").await;
            holder.execute("LOCK TABLE stock_items IN EXCLUSIVE MODE").await;
        }
        _ => holder.execute("LOCK TABLES stock_items WRITE").await,
    }
    let browser = Browser::on_the_page(&app.address, RUN).await;

    pick(&browser, "stock").await;
    choose(&browser, &["naive", "conditional"]).await;
    fill(&browser, "#lab-workers", "2").await;
    fill(&browser, "#lab-increments", "3").await;
    browser.client.find(Locator::Css("#lab-run")).await.unwrap().click().await.unwrap();
    Raw::connect(&test).await.wait_for_statement_waiting("INSERT INTO stock_items%").await;

    browser.wait_for(r#"#lab-state[data-run-state="running"]"#, RUN).await;
    browser.wait_for("#run-lab[data-stream-progress]", RUN).await;
    for strategy in ["naive", "conditional"] {
        let row = format!(r#"#lab-progress tr[data-strategy="{strategy}"]"#);
        let refused = browser.wait_for(&format!(r#"{row} td[data-field="refused"]"#), RUN).await.text().await.unwrap();
        assert_eq!(refused, "0", "{strategy}: nothing can be refused while the test holds the table");
        let done = browser.js(&format!("return document.querySelector('{row} progress').value;"), vec![]).await;
        assert_eq!(done, json!(0), "{strategy}: nothing can be done while the test holds the table");
    }
    browser.screenshots(&format!("workload-progress-{}-{}", test.backend, DESKTOP.name)).await;

    match test.backend {
        Backend::Postgres => holder.execute("COMMIT").await,
        _ => holder.execute("UNLOCK TABLES").await,
    }
    browser.wait_for(r#"#lab-state[data-run-state="finished"]"#, RUN).await;
    let id = browser.client.current_url().await.unwrap().path().trim_start_matches("/runs/").to_owned();
    let run = app.ok(&format!("/experiments/{id}")).await;
    assert_table_matches(&browser, &run).await;
    browser.assert_no_errors(&[]).await;
}

on_server_backends!(progress_is_live_while_the_test_holds_the_stock_table);
