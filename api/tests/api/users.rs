use reqwest::StatusCode;
use serde_json::{json, Value};
use tenancy::Password;

use crate::helpers::{assert_error, TestApp};

#[tokio::test]
async fn a_created_password_is_shown_once_and_stored_only_as_an_argon2id_hash() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;

    let response = app.post_user("acme", &json!({ "name": "acme.app" })).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["username"], "acme.app");
    let password = body["password"].as_str().unwrap().to_owned();
    assert!(
        password.len() >= 32,
        "password too short: {}",
        password.len()
    );

    let hash = app.stored_hash("acme.app").await;
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(&password));
    assert!(Password::new(password.clone()).verify(&hash));
    assert!(!Password::new("not-the-password").verify(&hash));

    let shown = app.get_user("acme", "acme.app").await.text().await.unwrap();
    assert!(!shown.contains(&password), "the password was shown again");
    assert!(!shown.contains("argon2"), "the hash leaked: {shown}");
}

#[tokio::test]
async fn two_users_never_get_the_same_password() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;

    let first = app.create_user("acme", "acme.one", json!([])).await;
    let second = app.create_user("acme", "acme.two", json!([])).await;

    assert_ne!(first, second);
}

#[tokio::test]
async fn a_rotated_password_replaces_the_old_one() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let old = app.create_user("acme", "acme.app", json!([])).await;

    let response = app.post_password("acme", "acme.app").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let new = body["password"].as_str().unwrap();
    assert_ne!(new, old);
    let hash = app.stored_hash("acme.app").await;
    assert!(Password::new(new).verify(&hash));
    assert!(
        !Password::new(old).verify(&hash),
        "the old password still verifies"
    );
}

#[tokio::test]
async fn users_are_listed_with_their_grants() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_user(
        "acme",
        "acme.reader",
        json!([{ "prefix": "acme.orders", "read": true }]),
    )
    .await;
    app.create_user(
        "acme",
        "acme.writer",
        json!([{ "prefix": "acme.", "write": true }]),
    )
    .await;

    let users: Vec<Value> = app.get_users("acme").await.json().await.unwrap();

    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["name"], "acme.reader");
    assert_eq!(
        users[0]["grants"],
        json!([{ "prefix": "acme.orders", "read": true, "write": false, "manage": false }])
    );
    assert_eq!(
        users[1]["grants"],
        json!([{ "prefix": "acme.", "read": false, "write": true, "manage": false }])
    );
}

#[tokio::test]
async fn a_user_name_outside_the_tenant_namespace_is_refused() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_tenant("acme2").await;
    let long = format!("acme.{}", "u".repeat(65));
    for name in [
        "app",
        "acme2.app",
        "acmeapp",
        "acme.",
        "acme..app",
        "acme.a b",
        long.as_str(),
    ] {
        let response = app.post_user("acme", &json!({ "name": name })).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_name").await;
    }
}

#[tokio::test]
async fn a_grant_outside_the_namespace_or_without_rights_is_refused_at_creation() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;

    let outside = app
        .post_user(
            "acme",
            &json!({ "name": "acme.app", "grants": [{ "prefix": "other.", "read": true }] }),
        )
        .await;
    assert_error(outside, StatusCode::BAD_REQUEST, "invalid_prefix").await;

    let no_rights = app
        .post_user(
            "acme",
            &json!({ "name": "acme.app", "grants": [{ "prefix": "acme." }] }),
        )
        .await;
    assert_error(no_rights, StatusCode::BAD_REQUEST, "invalid_grant").await;

    let twice = app
        .post_user(
            "acme",
            &json!({ "name": "acme.app", "grants": [{ "prefix": "acme.", "read": true }, { "prefix": "acme.", "write": true }] }),
        )
        .await;
    assert_error(twice, StatusCode::BAD_REQUEST, "invalid_grants").await;

    assert_error(
        app.get_user("acme", "acme.app").await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    )
    .await;
}

#[tokio::test]
async fn creating_the_same_user_twice_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_user("acme", "acme.app", json!([])).await;

    let response = app.post_user("acme", &json!({ "name": "acme.app" })).await;

    assert_error(response, StatusCode::CONFLICT, "user_exists").await;
}

#[tokio::test]
async fn a_user_can_be_disabled_enabled_and_deleted() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_user("acme", "acme.app", json!([])).await;

    let disabled: Value = app
        .patch_user("acme", "acme.app", &json!({ "disabled": true }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(disabled["disabled"], true);
    let enabled: Value = app
        .patch_user("acme", "acme.app", &json!({ "disabled": false }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(enabled["disabled"], false);

    assert_eq!(
        app.delete_user("acme", "acme.app").await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.get_user("acme", "acme.app").await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    )
    .await;
    assert_error(
        app.delete_user("acme", "acme.app").await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    )
    .await;
}

#[tokio::test]
async fn another_tenants_user_cannot_be_reached_through_this_tenant() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    app.create_user("globex", "globex.app", json!([])).await;

    // The name is outside acme's namespace: refused before any lookup.
    let response = app.post_password("acme", "globex.app").await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_name").await;
    let response = app.delete_user("acme", "globex.app").await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_name").await;
    assert_eq!(
        app.get_user("globex", "globex.app").await.status(),
        StatusCode::OK
    );
}
