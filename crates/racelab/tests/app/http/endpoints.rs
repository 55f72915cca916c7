//! Each endpoint's status, content type and JSON keys, and the first call on an empty database.

use racelab_core::Backend;
use racelab_testkit::{TestDb, on_every_backend};

use crate::support::service::{Raw, keys, spawn_app};

/// Every seed endpoint that runs an experiment, with the strategy it reports.
pub fn experiment_endpoints(backend: Backend) -> Vec<(&'static str, &'static str)> {
    let mut endpoints = vec![
        ("/test-db/inc", "naive"),
        ("/test-db/2th", "naive"),
        ("/test-db/2th-plock", "pessimistic"),
        ("/test-db/2th-olock", "optimistic"),
        ("/test-db/2th-olock-sqlalchemy-versioning", "versioned"),
        ("/test-db/2th-atomic", "atomic"),
        ("/test-db/2th-serializable", "serializable"),
    ];
    if backend != Backend::Sqlite {
        endpoints.push(("/test-db/2th-advisory", "advisory"));
    }
    endpoints
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    keys.sort();
    keys.dedup();
    keys
}

async fn every_endpoint_answers_json_with_the_seeds_keys(test: TestDb) {
    let app = spawn_app(&test).await;

    let root = app.ok("/test-db/").await;
    assert_eq!(keys(&root), sorted(&["message", "database", "version", "status", "postgres_version"]));
    assert_eq!(root["database"], test.backend.as_str());
    assert!(root["version"].as_str().is_some_and(|v| !v.is_empty()), "{root}");
    // The seed's keys: its `postgres_version` is the server's version on any backend.
    assert_eq!(root["status"], "success");
    assert_eq!(root["postgres_version"], root["version"]);

    // Without the slash, as FastAPI does: a redirect to it, the query kept.
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/test-db?a=1", app.address))
        .send()
        .await
        .expect("GET /test-db");
    assert_eq!(bare.status(), 307);
    assert_eq!(bare.headers()["location"], "/test-db/?a=1");
    assert_eq!(keys(&app.ok("/test-db").await), keys(&root));

    let init = app.ok("/test-db/init").await;
    assert_eq!(keys(&init), sorted(&["message", "like_result", "post"]));
    assert_eq!(init["like_result"], 0);

    let check = app.ok("/test-db/check").await;
    assert_eq!(keys(&check), sorted(&["message", "like_result", "post", "like", "version", "vsersion", "modified_at"]));
    assert_eq!((check["like"].as_i64(), check["version"].as_i64()), (Some(0), Some(0)));

    // The fields of `racelab lab --json`, which every experiment answer carries under `experiment`: the
    // outcome as the served document describes it (core's `Outcome` itself).
    let outcome_keys = keys(&app.ok("/openapi.json").await["components"]["schemas"]["OutcomeSchema"]["properties"]);
    for (path, strategy) in experiment_endpoints(test.backend) {
        let body = app.ok(path).await;
        assert_eq!(keys(&body), sorted(&["message", "like_result", "post", "verdict", "experiment"]), "{path}");
        assert_eq!(keys(&body["experiment"]), outcome_keys, "{path}");
        assert_eq!(body["experiment"]["strategy"], strategy, "{path}");
        assert_eq!(body["experiment"]["database"], test.backend.as_str(), "{path}");
        assert_eq!(body["like_result"], body["experiment"]["like_after"], "{path}");
        let seed_name = path.trim_start_matches("/test-db");
        assert!(body["message"].as_str().is_some_and(|m| m.starts_with(&format!("{seed_name} : "))), "{body}");
    }

    let versioning = app.ok("/test-db/test-versioning").await;
    let seed_keys = ["initial_like", "initial_version", "updated_like", "updated_version"];
    let own_keys = ["message", "like_result", "post", "before", "after", "attempts"];
    assert_eq!(keys(&versioning), sorted(&[own_keys.as_slice(), seed_keys.as_slice()].concat()));
    for (seed, (state, member)) in
        seed_keys.into_iter().zip([("before", "like"), ("before", "version"), ("after", "like"), ("after", "version")])
    {
        assert_eq!(versioning[seed], versioning[state][member], "{seed}: {versioning}");
    }
    let check = app.ok("/test-db/check").await;
    assert!(check["version"].as_i64().is_some_and(|v| v > 0), "{check}");
    assert_eq!(check["vsersion"], check["version"], "the seed's misspelt key: {check}");
    assert_eq!(versioning["after"]["like"].as_i64(), versioning["before"]["like"].as_i64().map(|l| l + 1));
    assert_eq!(versioning["after"]["version"].as_i64(), versioning["before"]["version"].as_i64().map(|v| v + 1));

    for path in ["/health", "/ready"] {
        let body = app.ok(path).await;
        assert!(body["status"].is_string(), "{path}: {body}");
    }
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.content_type.starts_with("text/plain"), "{}", metrics.content_type);
    assert!(metrics.text.contains("http_requests_total"), "{}", metrics.text);
    // No request holds a post any more: the lock table is empty again.
    assert_eq!(app.state.posts_in_use(), 0);
}

// The seed's service answered 500 on an empty table: it could not create its own row. Here the very
// first call works on a database that has not even been migrated, and then every endpoint works as the
// first call on an empty `posts` table.
async fn each_endpoint_works_as_the_first_call_on_an_empty_database(test: TestDb) {
    let app = spawn_app(&test).await;
    let first = app.ok("/test-db/2th-plock").await;
    assert_eq!(first["like_result"], 50, "{first}");

    let mut raw = Raw::connect(&test).await;
    let mut paths = vec!["/test-db/", "/test-db/init", "/test-db/check", "/test-db/test-versioning"];
    paths.extend(experiment_endpoints(test.backend).into_iter().map(|(path, _)| path));
    for path in paths {
        raw.execute("DELETE FROM posts").await;
        let body = app.ok(path).await;
        if body.get("like_result").is_some() {
            assert_eq!(body["post"], 1, "{path}: {body}");
            assert_eq!(raw.count("SELECT COUNT(*) FROM posts WHERE pk = 1").await, 1, "{path} created post 1");
        }
    }
}

on_every_backend!(
    every_endpoint_answers_json_with_the_seeds_keys,
    each_endpoint_works_as_the_first_call_on_an_empty_database
);
