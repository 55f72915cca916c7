//! `/openapi.json` is OpenAPI 3.1 and lists every route with its parameters and error responses;
//! `/docs` is the Swagger UI served from the binary, with nothing fetched from outside.

use racelab_core::{Backend, LockMode};
use racelab_testkit::TestDb;
use serde_json::{Value, json};

use crate::support::service::{keys, spawn_app};

const ROUTES: [&str; 16] = [
    "/test-db/",
    "/test-db/init",
    "/test-db/check",
    "/test-db/inc",
    "/test-db/2th",
    "/test-db/2th-plock",
    "/test-db/2th-olock",
    "/test-db/2th-olock-sqlalchemy-versioning",
    "/test-db/2th-atomic",
    "/test-db/2th-serializable",
    "/test-db/2th-advisory",
    "/test-db/2th-sharded",
    "/test-db/test-versioning",
    "/health",
    "/ready",
    "/metrics",
];

/// The resource API's paths and the methods each documents (their behaviour is tested in `posts.rs`),
/// and the experiment runs' (tested in `runs.rs`; `/workloads` in `experiments_workloads.rs`, `/specs`
/// in `experiments_spec.rs`).
const RESOURCE_ROUTES: [(&str, &[&str]); 9] = [
    ("/posts", &["post"]),
    ("/posts/{pk}", &["get", "patch", "delete"]),
    ("/posts/{pk}/likes", &["post"]),
    ("/experiments", &["post"]),
    ("/experiments/{id}", &["get"]),
    ("/experiments/{id}/events", &["get"]),
    ("/experiments/{id}/stop", &["post"]),
    ("/workloads", &["get"]),
    ("/specs", &["get"]),
];

fn parameter_names(operation: &Value) -> Vec<String> {
    let mut names: Vec<String> = operation["parameters"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn openapi_is_3_1_and_lists_every_route() {
    racelab_testkit::run(Backend::Sqlite, openapi_document).await;
}

async fn openapi_document(test: TestDb) {
    let app = spawn_app(&test).await;
    let doc = app.ok("/openapi.json").await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", doc["openapi"]);
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut paths = keys(&doc["paths"]);
    let mut expected: Vec<String> =
        ROUTES.iter().chain(RESOURCE_ROUTES.iter().map(|(r, _)| r)).map(|r| r.to_string()).collect();
    expected.sort();
    paths.sort();
    assert_eq!(paths, expected);
    for (route, methods) in RESOURCE_ROUTES {
        let mut documented = keys(&doc["paths"][route]);
        documented.sort();
        let mut methods = methods.to_vec();
        methods.sort();
        assert_eq!(documented, methods, "{route}");
    }

    for route in ROUTES {
        let operation = &doc["paths"][route]["get"];
        assert!(operation.is_object(), "{route} has no GET");
        assert!(operation["responses"]["200"].is_object(), "{route} documents no 200");
        // Every documented route is really served.
        assert_ne!(app.get(route).await.status, 404, "{route} is documented but not served");
    }
    let run_params = ["force_race", "increments", "post", "workers"];
    for route in ROUTES.iter().filter(|r| r.contains("/2th")) {
        let operation = &doc["paths"][route]["get"];
        let names = parameter_names(operation);
        for name in run_params {
            assert!(names.contains(&name.to_string()), "{route} lacks `{name}`: {names:?}");
        }
        for status in ["400", "409", "422", "503"] {
            let content = &operation["responses"][status]["content"];
            assert!(content["application/problem+json"].is_object(), "{route} {status}: {content}");
        }
        let schema = &operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(schema, "#/components/schemas/LabResponse", "{route}");
    }
    // Every status a `/test-db` endpoint can answer besides 200 is a documented problem.
    for route in ROUTES.iter().filter(|r| r.starts_with("/test-db/")) {
        let responses = &doc["paths"][route]["get"]["responses"];
        let mut statuses = vec!["400", "503"];
        if *route != "/test-db/" {
            statuses.push("409");
        }
        if *route == "/test-db/2th-advisory" {
            statuses.push("501");
        }
        for status in statuses {
            let schema = &responses[status]["content"]["application/problem+json"]["schema"]["$ref"];
            assert_eq!(schema, "#/components/schemas/Problem", "{route} {status}: {responses}");
        }
    }
    // `mode` is a plain string enum of the lock modes (it was an unsatisfiable `allOf` of a string enum
    // and `{type: object}`).
    let mode = doc["paths"]["/test-db/2th-plock"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "mode"))
        .expect("mode");
    let modes: Vec<&str> = LockMode::ALL.iter().map(|m| m.as_str()).collect();
    assert_eq!(mode["schema"], json!({"type": "string", "enum": modes, "default": "wait"}), "{mode}");
    assert_eq!(mode["required"], false);
    let versioning = &doc["paths"]["/test-db/2th-olock-sqlalchemy-versioning"]["get"];
    assert!(parameter_names(versioning).contains(&"retry".to_string()));
    let workers = doc["paths"]["/test-db/2th"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "workers"))
        .expect("workers");
    assert_eq!((workers["schema"]["minimum"].as_i64(), workers["schema"]["maximum"].as_i64()), (Some(1), Some(32)));
    assert_eq!(workers["required"], false);

    let schemas = &doc["components"]["schemas"];
    assert!(schemas["LabResponse"]["example"]["like_result"].is_number(), "no example");
    // Every reference resolves.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(schemas[name].is_object(), "dangling reference to `{name}`");
    }
    // The documented outcome is the outcome served, down to its nodes and latency.
    let served = app.ok("/test-db/2th?workers=1&increments=1").await;
    let outcome = &served["experiment"];
    assert_eq!(keys(&schemas["OutcomeSchema"]["properties"]), keys(outcome), "{outcome}");
    assert_eq!(keys(&schemas["NodeSchema"]["properties"]), keys(&outcome["nodes"][0]), "{outcome}");
    assert_eq!(keys(&schemas["LatencySchema"]["properties"]), keys(&outcome["latency_ms"]), "{outcome}");
    let outcome_ref = &schemas["LabResponse"]["properties"]["experiment"]["$ref"];
    assert_eq!(outcome_ref, "#/components/schemas/OutcomeSchema");
    assert!(schemas["Problem"]["properties"]["detail"].is_object());
}

#[tokio::test]
async fn docs_page_is_served_with_nothing_from_outside() {
    racelab_testkit::run(Backend::Sqlite, docs_page).await;
}

async fn docs_page(test: TestDb) {
    let app = spawn_app(&test).await;
    // reqwest follows /docs -> /docs/.
    let page = app.get("/docs").await;
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"), "{}", page.content_type);
    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for piece in page.text.split(attribute).skip(1) {
            let target = piece.split('"').next().unwrap_or_default();
            assert!(!target.contains("//"), "the page loads `{target}` from outside");
            assets.push(target.trim_start_matches("./").to_owned());
        }
    }
    assert!(assets.iter().any(|a| a.ends_with("swagger-ui-bundle.js")), "{assets:?}");
    for asset in assets {
        let answer = app.get(&format!("/docs/{asset}")).await;
        assert_eq!(answer.status, 200, "/docs/{asset}");
    }
    let initializer = app.get("/docs/swagger-initializer.js").await;
    assert!(initializer.text.contains("/openapi.json"), "{}", initializer.text);
    assert!(!initializer.text.contains("https://"), "{}", initializer.text);
}

#[tokio::test]
async fn redoc_is_served_with_nothing_from_outside() {
    racelab_testkit::run(Backend::Sqlite, redoc_page).await;
}

/// `/redoc`, as FastAPI has it: a page naming only this server's URLs, its bundle served as
/// JavaScript, and a policy that keeps the browser from fetching anything elsewhere (the bundle's
/// Redocly logo, fonts). The routes are not in the OpenAPI document (`openapi_document` checks the
/// exact list of paths), as the Swagger UI's are not.
async fn redoc_page(test: TestDb) {
    let app = spawn_app(&test).await;
    let page = app.get("/redoc").await;
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"), "{}", page.content_type);

    let mut urls = Vec::new();
    for attribute in ["src=\"", "href=\"", "spec-url=\""] {
        for piece in page.text.split(attribute).skip(1) {
            urls.push(piece.split('"').next().unwrap_or_default().to_owned());
        }
    }
    assert!(!page.text.contains("//"), "the page names an outside URL: {}", page.text);
    assert!(urls.contains(&"/openapi.json".to_owned()), "{urls:?}");
    let script = urls.iter().find(|u| u.ends_with(".js")).unwrap_or_else(|| panic!("no script in {}", page.text));
    for url in &urls {
        assert!(url.starts_with('/'), "`{url}` is not a path on this server");
        assert_eq!(app.get(url).await.status, 200, "{url}");
    }
    let bundle = app.get(script).await;
    assert!(bundle.content_type.starts_with("text/javascript"), "{}", bundle.content_type);
    assert!(bundle.text.len() > 500_000 && bundle.text.contains("Redoc"), "not the ReDoc bundle");

    let policy = page.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).expect("a CSP header");
    for directive in ["default-src 'none'", "script-src 'self'", "img-src 'self' data:", "connect-src 'self'"] {
        assert!(policy.contains(directive), "`{directive}` not in {policy}");
    }
    assert!(!policy.contains("http") && !policy.contains('*'), "the policy allows outside sources: {policy}");
}
