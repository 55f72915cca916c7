//! Query parameters: every `/test-db/*` endpoint accepts exactly the parameters its OpenAPI operation
//! documents, each once and spelled one way, within the server's configured maxima; a refusal is a 400
//! problem naming the parameter, and repeats at most a short piece of what the client sent.

use racelab::http::lab::Limits;
use racelab::http::query::ECHO_LIMIT;
use racelab_core::Backend;
use racelab_testkit::TestDb;
use serde_json::Value;

use crate::support::service::{Settings, assert_refused, spawn_app};

#[tokio::test]
async fn repeated_parameters_are_refused_naming_them() {
    racelab_testkit::run(Backend::Sqlite, repeated_parameters).await;
}

async fn repeated_parameters(test: TestDb) {
    let app = spawn_app(&test).await;
    app.ok("/test-db/init").await;
    let cases = [
        ("/test-db/2th?workers=2&workers=3", "workers"),
        ("/test-db/2th-plock?mode=bogus&mode=nowait", "mode"),
        ("/test-db/2th-plock?mode=nowait&increments=1&mode=nowait", "mode"),
        ("/test-db/inc?post=1&post=1", "post"),
    ];
    for (path, name) in cases {
        assert_refused(&app.get(path).await, name, "is given 2 times; give it once");
    }
    // Refused before anything ran: post 1 is as `init` left it.
    assert_eq!(app.ok("/test-db/check").await["like"], 0);
}

#[tokio::test]
async fn every_endpoint_accepts_exactly_its_documented_parameters() {
    racelab_testkit::run(Backend::Sqlite, documented_parameters).await;
}

/// A documented default as a query value.
fn query_value(default: &Value) -> String {
    default.as_str().map_or_else(|| default.to_string(), str::to_owned)
}

async fn documented_parameters(test: TestDb) {
    let limits = Limits { max_workers: 2, max_increments: 3 };
    let app = Settings { limits, ..Settings::default() }.spawn(&test.url).await;
    let doc = app.ok("/openapi.json").await;
    let paths = doc["paths"].as_object().expect("paths");
    let lab_paths: Vec<&String> = paths.keys().filter(|p| p.starts_with("/test-db/")).collect();
    assert!(lab_paths.len() >= 12, "{lab_paths:?}");
    for path in lab_paths {
        let parameters = paths[path]["get"]["parameters"].as_array().cloned().unwrap_or_default();
        let names: Vec<&str> = parameters.iter().filter_map(|p| p["name"].as_str()).collect();
        // Every documented parameter, given its documented default, is accepted...
        let query: Vec<String> = parameters
            .iter()
            .map(|p| format!("{}={}", p["name"].as_str().expect("name"), query_value(&p["schema"]["default"])))
            .collect();
        let query = query.join("&");
        let answer = app.get(&format!("{path}?{query}")).await;
        let expected = if path == "/test-db/2th-advisory" { 501 } else { 200 };
        assert_eq!(answer.status, expected, "{path}?{query}: {}", answer.text);
        // ... and a parameter it does not document is refused, with the list of those it takes.
        let extra = if query.is_empty() { "verbose=true".to_owned() } else { format!("{query}&verbose=true") };
        let answer = app.get(&format!("{path}?{extra}")).await;
        let says =
            if names.is_empty() { "which takes none".to_owned() } else { format!("it takes {}", names.join(", ")) };
        assert_refused(&answer, "verbose", &says);
    }
}

#[tokio::test]
async fn numbers_and_booleans_have_one_spelling() {
    racelab_testkit::run(Backend::Sqlite, one_spelling).await;
}

async fn one_spelling(test: TestDb) {
    let app = spawn_app(&test).await;
    let cases = [
        ("/test-db/2th?workers=%2B2", "workers", "between 1 and 32, got `+2`"),
        // A literal `+` in a query is a space.
        ("/test-db/2th?workers=+2", "workers", "between 1 and 32, got ` 2`"),
        ("/test-db/2th?workers=0002", "workers", "between 1 and 32, got `0002`"),
        ("/test-db/2th?workers=2%20", "workers", "between 1 and 32, got `2 `"),
        ("/test-db/2th?workers=", "workers", "between 1 and 32, got ``"),
        ("/test-db/inc?increments=1e2", "increments", "between 1 and 1000, got `1e2`"),
        ("/test-db/check?post=-0", "post", "between 1 and 2147483647, got `-0`"),
        ("/test-db/2th?force_race=1", "force_race", "must be `true` or `false`, got `1`"),
        ("/test-db/2th?force_race=True", "force_race", "must be `true` or `false`, got `True`"),
        ("/test-db/2th-olock-sqlalchemy-versioning?retry=0", "retry", "must be `true` or `false`, got `0`"),
        ("/test-db/2th-plock?mode=NOWAIT", "mode", "must be one of wait, nowait, skip-locked, got `NOWAIT`"),
    ];
    for (path, name, says) in cases {
        assert_refused(&app.get(path).await, name, says);
    }
    let body = app.ok("/test-db/2th-plock?workers=2&increments=3&force_race=false&mode=skip-locked").await;
    assert_eq!(body["experiment"]["strategy"], "pessimistic-skip-locked", "{body}");
    assert_eq!(body["experiment"]["expected"], 6, "{body}");
}

#[tokio::test]
async fn a_long_value_is_echoed_cut_short() {
    racelab_testkit::run(Backend::Sqlite, long_value).await;
}

async fn long_value(test: TestDb) {
    let app = spawn_app(&test).await;
    let cut = format!("{}…", "7".repeat(ECHO_LIMIT));
    // Long, but within the URI limit (a longer target is a 414, tested with the server's limits).
    let answer = app.get(&format!("/test-db/2th?workers={}", "7".repeat(8_000))).await;
    let problem = assert_refused(&answer, "workers", &format!("got `{cut}`"));
    assert!(problem["invalid_params"][0]["reason"].as_str().is_some_and(|r| r.ends_with(&format!("`{cut}`"))));
    assert!(answer.text.len() < 1_000, "a {} byte body", answer.text.len());

    // A long parameter name is cut too.
    let answer = app.get(&format!("/test-db/2th?{}=1", "x".repeat(8_000))).await;
    let name = format!("{}…", "x".repeat(ECHO_LIMIT));
    assert_refused(&answer, &name, "is not a parameter of this endpoint");
    assert!(answer.text.len() < 1_000, "a {} byte body", answer.text.len());
}

#[tokio::test]
async fn the_configured_maxima_are_documented_and_enforced() {
    racelab_testkit::run(Backend::Sqlite, configured_maxima).await;
}

async fn configured_maxima(test: TestDb) {
    let limits = Limits { max_workers: 3, max_increments: 7 };
    let app = Settings { limits, ..Settings::default() }.spawn(&test.url).await;
    let doc = app.ok("/openapi.json").await;
    let mut bounded = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for parameter in item["get"]["parameters"].as_array().into_iter().flatten() {
            let maximum = match parameter["name"].as_str() {
                Some("workers") => 3,
                Some("increments") => 7,
                _ => continue,
            };
            assert_eq!(parameter["schema"]["maximum"], maximum, "{path}: {parameter}");
            let default = parameter["schema"]["default"].as_i64().expect("a default");
            assert!((1..=maximum).contains(&default), "{path}: {parameter}");
            bounded += 1;
        }
    }
    // workers and increments on the eight `2th*` endpoints, increments on `/inc`.
    assert_eq!(bounded, 2 * 8 + 1);

    assert_refused(&app.get("/test-db/2th?workers=4").await, "workers", "between 1 and 3, got `4`");
    assert_refused(&app.get("/test-db/inc?increments=8").await, "increments", "between 1 and 7, got `8`");
    let body = app.ok("/test-db/2th-atomic?workers=3&increments=7").await;
    assert_eq!(body["like_result"], 21, "{body}");
    // The default of `increments` (25) is above the maximum: the documented default, 7, is the one used.
    let body = app.ok("/test-db/inc").await;
    assert_eq!(body["experiment"]["expected"], 7, "{body}");
}
