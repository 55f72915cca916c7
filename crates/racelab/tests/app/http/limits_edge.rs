//! The service at the edges of what it accepts, on every backend: a like on a count at its maximum
//! (2^63 - 1) is a 409 `counter-at-maximum` naming the post and its count, keyed or not, combined or
//! not, and never a 500; `Idempotency-Key` is one Structured Field String (or Token), anything else a
//! 400 naming the header; an `If-Match` that names no entity-tag is a malformed precondition, 400.

use racelab::http::LikeSettings;
use racelab_testkit::{TestDb, on_every_backend};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, IF_MATCH};

use crate::support::service::{Answer, Raw, Settings, TestApp, assert_problem, read_answer, spawn_app};

const MAX: i64 = i64::MAX;

async fn like(app: &TestApp, pk: i64, keys: &[&str]) -> Answer {
    let mut request = app.client.post(format!("{}/posts/{pk}/likes", app.address));
    for key in keys {
        request = request.header("idempotency-key", *key);
    }
    read_answer(request.send().await.expect("POST likes")).await
}

async fn patch(app: &TestApp, pk: i64, if_match: &str, like: i64) -> Answer {
    let request = app
        .client
        .patch(format!("{}/posts/{pk}", app.address))
        .header(CONTENT_TYPE, "application/json")
        .header(IF_MATCH, if_match)
        .body(format!(r#"{{"like": {like}}}"#));
    read_answer(request.send().await.expect("PATCH")).await
}

/// The post's `like` and `version`, read by the test itself.
async fn stored(test: &TestDb, pk: i64) -> (i64, i64) {
    let mut raw = Raw::connect(test).await;
    let like = raw.like();
    let like = raw.count(&format!("SELECT {like} FROM posts WHERE pk = {pk}")).await;
    (like, raw.count(&format!("SELECT version FROM posts WHERE pk = {pk}")).await)
}

/// Asserts the 409 of a like on post `pk` whose count is `count`, and that it names both.
fn assert_at_maximum(answer: &Answer, pk: i64, count: i64) {
    let problem = assert_problem(answer, 409);
    assert_eq!(problem["type"], "urn:racelab:problem:counter-at-maximum", "{}", answer.text);
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&format!("post {pk} has like {count}")), "{detail}");
}

// Before: PATCH accepted the maximum and every like after it was a 500 (`bigint out of range`, 22003 on
// PostgreSQL; 1690 on MariaDB; on SQLite the like was stored as a REAL).
async fn a_like_past_the_maximum_is_409_naming_the_post(test: TestDb) {
    for combine in [false, true] {
        let settings = Settings { likes: LikeSettings { combine, ..LikeSettings::default() }, ..Settings::default() };
        let app = settings.spawn(&test.url).await;
        let pk = app.new_post().await;
        assert_eq!(patch(&app, pk, "\"0\"", MAX - 1).await.status, StatusCode::OK);

        // The like that reaches the maximum is made, and answers it.
        let last = like(&app, pk, &[]).await;
        assert_eq!((last.status, &last.body), (StatusCode::OK, &serde_json::json!({"pk": pk, "like": MAX})));
        let key = format!("\"past-the-maximum-{combine}\"");
        for keys in [&[][..], &[key.as_str()][..]] {
            assert_at_maximum(&like(&app, pk, keys).await, pk, MAX);
        }
        assert_eq!(stored(&test, pk).await, (MAX, 2), "combine {combine}: nothing counted");
        // The refusal stored nothing under its key: once there is room, the key makes its like.
        assert_eq!(patch(&app, pk, "\"2\"", 7).await.status, StatusCode::OK);
        let later = like(&app, pk, &[key.as_str()]).await;
        assert_eq!((later.status, &later.body["like"]), (StatusCode::OK, &serde_json::json!(8)), "{}", later.text);
    }
}

// The seed's endpoints on a post at the maximum: each increment is refused and counted as such, never
// a 500 (before: 22003 on PostgreSQL, and a panic of the naive strategy's `like + 1` in a debug build).
async fn an_experiment_on_a_post_at_the_maximum_counts_its_refusals(test: TestDb) {
    let app = spawn_app(&test).await;
    let pk = app.new_post().await;
    assert_eq!(patch(&app, pk, "\"0\"", MAX).await.status, StatusCode::OK);
    for endpoint in ["2th", "2th-atomic", "2th-plock", "2th-olock"] {
        let answer = app.get(&format!("/test-db/{endpoint}?post={pk}&workers=2&increments=2")).await;
        assert_eq!(answer.status, StatusCode::OK, "{endpoint}: {}", answer.text);
        let experiment = &answer.body["experiment"];
        assert_eq!(experiment["errors"]["counter_overflow"], 4, "{endpoint}: {}", answer.text);
        assert_eq!((experiment["acknowledged"].as_u64(), answer.body["like_result"].as_i64()), (Some(0), Some(MAX)));
    }
    assert_eq!(stored(&test, pk).await, (MAX, 1));
}

// Before: the first of two headers was used, `""` was the two-character key `""`, and `"abc` or
// `"abc";x=1` were taken as they were written.
async fn idempotency_key_is_one_structured_string(test: TestDb) {
    let app = spawn_app(&test).await;
    let pk = app.new_post().await;
    for keys in
        [&["\"\""][..], &["\"abc"], &["\"abc\";x=1"], &["abc;x=1"], &["\"a b\""], &["?1"], &["\"one\"", "\"two\""]]
    {
        let refused = like(&app, pk, keys).await;
        let problem = assert_problem(&refused, 400);
        assert_eq!(problem["invalid_params"][0]["name"], "idempotency-key", "{keys:?}: {}", refused.text);
    }
    assert_eq!(stored(&test, pk).await, (0, 0), "no refused like counted");

    // A bare UUID, as curl users send it and as this server always took it.
    let bare = like(&app, pk, &["8e03978e-40d5"]).await;
    assert_eq!(bare.status, StatusCode::OK, "{}", bare.text);
    assert_eq!(stored(&test, pk).await.0, 1);
    // A String and the bare word of its characters are one key.
    let first = like(&app, pk, &["\"abc-1\""]).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let again = like(&app, pk, &["abc-1"]).await;
    assert_eq!((again.status, &again.text), (first.status, &first.text));
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(stored(&test, pk).await.0, 2);
}

// Before: an empty `If-Match` was read as an empty list and answered 412.
async fn an_if_match_naming_no_tag_is_400(test: TestDb) {
    let app = spawn_app(&test).await;
    let pk = app.new_post().await;
    for if_match in ["", ",", " , "] {
        let answer = patch(&app, pk, if_match, 5).await;
        assert_eq!(assert_problem(&answer, 400)["invalid_params"][0]["name"], "if-match", "{}", answer.text);
        let request = app.client.delete(format!("{}/posts/{pk}", app.address)).header(IF_MATCH, if_match);
        let answer = read_answer(request.send().await.expect("DELETE")).await;
        assert_eq!(assert_problem(&answer, 400)["invalid_params"][0]["name"], "if-match", "{}", answer.text);
    }
    assert_eq!(stored(&test, pk).await, (0, 0));
}

// The document says all three: the 409 of a like and of a change name `counter-at-maximum`, and the
// two headers' schemas accept exactly what the server does (schemathesis generates from them).
async fn the_document_states_these_limits(test: TestDb) {
    let app = spawn_app(&test).await;
    let doc = app.ok("/openapi.json").await;
    let like = &doc["paths"]["/posts/{pk}/likes"]["post"];
    let patch = &doc["paths"]["/posts/{pk}"]["patch"];
    for operation in [like, patch] {
        let conflict = operation["responses"]["409"]["description"].as_str().unwrap_or_default();
        assert!(conflict.contains("counter-at-maximum"), "{conflict}");
    }
    let header = |operation: &serde_json::Value, name: &str| {
        let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
        parameters.into_iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no {name}"))
    };
    let key = header(like, "Idempotency-Key");
    assert!(key["schema"]["pattern"].as_str().is_some_and(|p| p.contains("{1,255}")), "{key}");
    let if_match = header(patch, "If-Match");
    assert_eq!(if_match["schema"]["minLength"], 1, "{if_match}");
    assert!(if_match["schema"]["pattern"].is_string(), "{if_match}");
}

on_every_backend!(
    a_like_past_the_maximum_is_409_naming_the_post,
    an_experiment_on_a_post_at_the_maximum_counts_its_refusals,
    idempotency_key_is_one_structured_string,
    an_if_match_naming_no_tag_is_400,
    the_document_states_these_limits,
);
