use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

#[tokio::test]
async fn grants_can_be_added_listed_and_removed() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_user("acme", "acme.app", json!([])).await;

    let added = app
        .post_grant(
            "acme",
            "acme.app",
            &json!({ "prefix": "acme.orders.", "read": true, "write": true }),
        )
        .await;
    assert_eq!(added.status(), StatusCode::CREATED);

    let grants: Vec<Value> = app
        .get_grants("acme", "acme.app")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        grants,
        vec![json!({ "prefix": "acme.orders.", "read": true, "write": true, "manage": false })]
    );

    let removed = app.delete_grant("acme", "acme.app", "acme.orders.").await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let grants: Vec<Value> = app
        .get_grants("acme", "acme.app")
        .await
        .json()
        .await
        .unwrap();
    assert!(grants.is_empty());
}

#[tokio::test]
async fn a_second_grant_on_the_same_prefix_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_user(
        "acme",
        "acme.app",
        json!([{ "prefix": "acme.", "read": true }]),
    )
    .await;

    let response = app
        .post_grant(
            "acme",
            "acme.app",
            &json!({ "prefix": "acme.", "write": true }),
        )
        .await;

    assert_error(response, StatusCode::CONFLICT, "grant_exists").await;
}

#[tokio::test]
async fn grant_prefixes_must_sit_inside_the_namespace() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_user("acme", "acme.app", json!([])).await;
    let long = format!("acme.{}", "p".repeat(250));
    for prefix in [
        "acme",
        "acme2.",
        "other.orders",
        "acme..x",
        "acme.a*",
        long.as_str(),
    ] {
        let response = app
            .post_grant(
                "acme",
                "acme.app",
                &json!({ "prefix": prefix, "read": true }),
            )
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_prefix").await;
    }
}

#[tokio::test]
async fn removing_a_grant_that_does_not_exist_is_404() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_user("acme", "acme.app", json!([])).await;

    let response = app.delete_grant("acme", "acme.app", "acme.orders").await;

    assert_error(response, StatusCode::NOT_FOUND, "grant_not_found").await;
}

#[tokio::test]
async fn a_grant_for_an_unknown_user_is_404() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;

    let response = app
        .post_grant(
            "acme",
            "acme.ghost",
            &json!({ "prefix": "acme.", "read": true }),
        )
        .await;

    assert_error(response, StatusCode::NOT_FOUND, "user_not_found").await;
}
