//! `/posts`: ETag and If-Match tied to the row's version (RFC 9110 §13.1.1, RFC 6585 §3), on every
//! backend.

use racelab_core::Backend;
use racelab_testkit::{TestDb, on_every_backend};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH, LOCATION};
use serde_json::{Value, json};

use crate::support::service::{Answer, Raw, TestApp, assert_problem, keys, read_answer, spawn_app};

/// `POST /posts`: 201 with the new post; returns its body and its ETag.
async fn create(app: &TestApp) -> (Value, String) {
    let answer = read_answer(app.client.post(format!("{}/posts", app.address)).send().await.expect("POST")).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let etag = header(&answer, ETAG.as_str());
    let pk = answer.body["pk"].as_i64().expect("pk");
    assert_eq!(header(&answer, LOCATION.as_str()), format!("/posts/{pk}"));
    (answer.body, etag)
}

fn header(answer: &Answer, name: &str) -> String {
    answer.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name}: {answer:?}")).to_owned()
}

async fn get(app: &TestApp, pk: i64, if_none_match: Option<&str>) -> Answer {
    let mut request = app.client.get(format!("{}/posts/{pk}", app.address));
    if let Some(tag) = if_none_match {
        request = request.header(IF_NONE_MATCH, tag);
    }
    read_answer(request.send().await.expect("GET")).await
}

async fn patch(app: &TestApp, pk: i64, if_match: Option<&str>, body: &str) -> Answer {
    let mut request = app
        .client
        .patch(format!("{}/posts/{pk}", app.address))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_owned());
    if let Some(tag) = if_match {
        request = request.header(IF_MATCH, tag);
    }
    read_answer(request.send().await.expect("PATCH")).await
}

async fn delete(app: &TestApp, pk: i64, if_match: Option<&str>) -> Answer {
    let mut request = app.client.delete(format!("{}/posts/{pk}", app.address));
    if let Some(tag) = if_match {
        request = request.header(IF_MATCH, tag);
    }
    read_answer(request.send().await.expect("DELETE")).await
}

async fn create_get_and_not_modified(test: TestDb) {
    let app = spawn_app(&test).await;

    let (created, etag) = create(&app).await;
    assert_eq!(keys(&created), ["like", "modified_at", "pk", "version"]);
    assert_eq!((created["like"].as_i64(), created["version"].as_i64()), (Some(0), Some(0)));
    assert_eq!(etag, "\"0\"");
    let pk = created["pk"].as_i64().expect("pk");

    let read = get(&app, pk, None).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.body, created);
    assert_eq!(header(&read, "etag"), etag);

    let cached = get(&app, pk, Some(&etag)).await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert_eq!(header(&cached, "etag"), etag);
    assert!(cached.text.is_empty());
    // A weak validator of the same version is current too (If-None-Match compares weakly), another is not.
    assert_eq!(get(&app, pk, Some("W/\"0\", \"9\"")).await.status, StatusCode::NOT_MODIFIED);
    assert_eq!(get(&app, pk, Some("\"9\"")).await.status, StatusCode::OK);

    let changed = patch(&app, pk, Some(&etag), r#"{"like": 7}"#).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!((changed.body["like"].as_i64(), changed.body["version"].as_i64()), (Some(7), Some(1)));
    assert_eq!(header(&changed, "etag"), "\"1\"");
    // The old ETag no longer stands for the post.
    assert_eq!(get(&app, pk, Some(&etag)).await.status, StatusCode::OK);
}

async fn two_patches_with_one_etag_one_wins(test: TestDb) {
    let app = spawn_app(&test).await;
    let (created, etag) = create(&app).await;
    let pk = created["pk"].as_i64().expect("pk");

    // On a server, the test holds the row lock until both requests wait for it: both have passed
    // every check the service makes before its conditional UPDATE, so a read-then-write would let both through.
    let mut holder = Raw::connect(&test).await;
    // Watched from a connection of its own: inside the holder's transaction, PostgreSQL would show
    // one snapshot of pg_stat_activity however often it is asked.
    let mut watcher = Raw::connect(&test).await;
    let server = test.backend != Backend::Sqlite;
    if server {
        holder.hold_row_lock(pk).await;
    }
    let release = async {
        if server {
            watcher.wait_for_statements_waiting("UPDATE posts%", 2).await;
            holder.execute("COMMIT").await;
        }
    };
    let (a, b, ()) = tokio::join!(
        patch(&app, pk, Some(&etag), r#"{"like": 10}"#),
        patch(&app, pk, Some(&etag), r#"{"like": 20}"#),
        release
    );

    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412], "{} / {}", a.text, b.text);
    let (winner, loser) = if a.status == StatusCode::OK { (&a, &b) } else { (&b, &a) };
    assert_problem(loser, 412);
    // The refusal names the version that won, and the post is the winner's.
    assert_eq!(header(loser, "etag"), "\"1\"");
    assert_eq!(header(winner, "etag"), "\"1\"");
    let now = get(&app, pk, None).await;
    assert_eq!(now.body["like"], winner.body["like"]);
    assert_eq!(now.body["version"], 1);
}

async fn writes_without_if_match_are_refused(test: TestDb) {
    let app = spawn_app(&test).await;
    let (created, _) = create(&app).await;
    let pk = created["pk"].as_i64().expect("pk");

    let answer = patch(&app, pk, None, r#"{"like": 3}"#).await;
    let problem = assert_problem(&answer, 428);
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("If-Match")), "{}", answer.text);
    assert_problem(&delete(&app, pk, None).await, 428);
    // Nothing was written.
    assert_eq!(get(&app, pk, None).await.body, created);

    // An If-Match that names no version states no precondition: malformed, not failed.
    let empty = patch(&app, pk, Some(""), r#"{"like": 3}"#).await;
    assert_eq!(assert_problem(&empty, 400)["invalid_params"][0]["name"], "if-match", "{}", empty.text);
    let malformed = patch(&app, pk, Some("0"), r#"{"like": 3}"#).await;
    assert_eq!(assert_problem(&malformed, 400)["invalid_params"][0]["name"], "if-match", "{}", malformed.text);
}

async fn stale_delete_is_refused(test: TestDb) {
    let app = spawn_app(&test).await;
    let (created, etag) = create(&app).await;
    let pk = created["pk"].as_i64().expect("pk");
    let changed = patch(&app, pk, Some(&etag), r#"{"like": 1}"#).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);

    let stale = delete(&app, pk, Some(&etag)).await;
    assert_problem(&stale, 412);
    assert_eq!(header(&stale, "etag"), "\"1\"");
    assert_eq!(get(&app, pk, None).await.status, StatusCode::OK);

    let current = delete(&app, pk, Some(&header(&stale, "etag"))).await;
    assert_eq!(current.status, StatusCode::NO_CONTENT, "{}", current.text);
    assert_problem(&get(&app, pk, None).await, 404);
    assert_problem(&delete(&app, pk, Some("\"1\"")).await, 404);
}

async fn bad_bodies_name_the_member(test: TestDb) {
    let app = spawn_app(&test).await;
    let (created, etag) = create(&app).await;
    let pk = created["pk"].as_i64().expect("pk");

    for (body, member) in [
        (r#"{"like": -1}"#, "like"),
        (r#"{"like": "3"}"#, "like"),
        (r#"{"like": 2.5}"#, "like"),
        (r#"{"like": 99999999999999999999}"#, "like"),
        (r#"{}"#, "like"),
        (r#"{"like": 1, "version": 9}"#, "version"),
        (r#"[{"like": 1}]"#, "body"),
    ] {
        let answer = patch(&app, pk, Some(&etag), body).await;
        let problem = assert_problem(&answer, 422);
        assert_eq!(problem["invalid_params"][0]["name"], member, "{body}: {}", answer.text);
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains(member)), "{body}: {}", answer.text);
    }
    assert_problem(&patch(&app, pk, Some(&etag), "{not json").await, 400);
    let form = read_answer(
        app.client
            .patch(format!("{}/posts/{pk}", app.address))
            .header(IF_MATCH, &etag)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("like=1")
            .send()
            .await
            .expect("PATCH"),
    )
    .await;
    assert_problem(&form, 415);
    // None of them wrote.
    assert_eq!(get(&app, pk, None).await.body, created);
}

async fn unknown_posts_and_bad_keys(test: TestDb) {
    let app = spawn_app(&test).await;
    let missing = 2_000_000_000;
    assert_problem(&get(&app, missing, None).await, 404);
    assert_problem(&patch(&app, missing, Some("\"0\""), r#"{"like": 1}"#).await, 404);
    assert_problem(&patch(&app, missing, Some("*"), r#"{"like": 1}"#).await, 404);
    assert_problem(&delete(&app, missing, Some("\"0\"")).await, 404);

    for key in ["0", "-1", "abc", "01", "99999999999999999999"] {
        let answer = app.get(&format!("/posts/{key}")).await;
        let problem = assert_problem(&answer, 400);
        assert_eq!(problem["invalid_params"][0]["name"], "pk", "{key}: {}", answer.text);
    }
}

async fn if_match_any_and_lists(test: TestDb) {
    let app = spawn_app(&test).await;
    let (created, _) = create(&app).await;
    let pk = created["pk"].as_i64().expect("pk");

    let any = patch(&app, pk, Some("*"), r#"{"like": 4}"#).await;
    assert_eq!(any.status, StatusCode::OK, "{}", any.text);
    // A list matches if one of its strong tags is current; a weak tag never does (strong comparison).
    assert_problem(&patch(&app, pk, Some("W/\"1\""), r#"{"like": 5}"#).await, 412);
    let listed = patch(&app, pk, Some("\"7\", \"1\""), r#"{"like": 5}"#).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body, json!({"pk": pk, "like": 5, "version": 2, "modified_at": listed.body["modified_at"]}));
    let gone = delete(&app, pk, Some("*")).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    assert_problem(&delete(&app, pk, Some("*")).await, 404);
}

on_every_backend!(
    create_get_and_not_modified,
    two_patches_with_one_etag_one_wins,
    writes_without_if_match_are_refused,
    stale_delete_is_refused,
    bad_bodies_name_the_member,
    unknown_posts_and_bad_keys,
    if_match_any_and_lists,
);
