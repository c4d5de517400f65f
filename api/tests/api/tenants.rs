use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

#[tokio::test]
async fn a_new_tenant_gets_the_default_quota_and_is_listed() {
    let app = TestApp::spawn().await;

    let tenant = app.create_tenant("acme").await;

    assert_eq!(tenant["name"], "acme");
    assert_eq!(tenant["disabled"], false);
    assert_eq!(tenant["quota"]["requests_per_second"], 100);
    assert_eq!(tenant["quota"]["burst_seconds"], 2);
    let list: Vec<Value> = app.get_tenants().await.json().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "acme");
}

#[tokio::test]
async fn quota_fields_given_at_creation_override_the_defaults() {
    let app = TestApp::spawn().await;

    let response = app
        .post_tenant(
            &json!({ "name": "acme", "quota": { "requests_per_second": 7, "max_topics": 3 } }),
        )
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let tenant: Value = response.json().await.unwrap();
    assert_eq!(tenant["quota"]["requests_per_second"], 7);
    assert_eq!(tenant["quota"]["max_topics"], 3);
    assert_eq!(tenant["quota"]["max_partitions"], 200);
}

#[tokio::test]
async fn creating_the_same_tenant_twice_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;

    let response = app.post_tenant(&json!({ "name": "acme" })).await;

    assert_error(response, StatusCode::CONFLICT, "tenant_exists").await;
}

#[tokio::test]
async fn illegal_tenant_names_are_refused_with_400() {
    let app = TestApp::spawn().await;
    let long = "a".repeat(33);
    for name in [
        "",
        "Acme",
        "ac.me",
        "_acme",
        "ac me",
        "acme/x",
        "ácme",
        long.as_str(),
    ] {
        let response = app.post_tenant(&json!({ "name": name })).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_name").await;
    }
}

#[tokio::test]
async fn malformed_or_mistyped_bodies_get_a_json_400_never_a_5xx() {
    let app = TestApp::spawn().await;
    let bodies = [
        "{",
        "[]",
        "null",
        r#"{"name": 5}"#,
        r#"{"nome": "acme"}"#,
        r#"{"name": "acme", "quota": {"requests_per_second": -1}}"#,
        r#"{"name": "acme", "quota": {"requests_per_second": "fast"}}"#,
        r#"{"name": "acme", "quota": {"surprise": 1}}"#,
    ];
    for body in bodies {
        let response = app
            .http
            .post(format!("{}/v1/tenants", app.admin_url))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
}

#[tokio::test]
async fn a_body_over_the_admin_limit_gets_413() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(sluice::admin::ADMIN_BODY_LIMIT + 1);

    let response = app.post_tenant(&json!({ "name": huge })).await;

    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn an_out_of_range_quota_is_refused_and_named() {
    let app = TestApp::spawn().await;

    let response = app
        .post_tenant(&json!({ "name": "acme", "quota": { "burst_seconds": 0 } }))
        .await;

    let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_quota").await;
    assert!(
        body["message"].as_str().unwrap().contains("burst_seconds"),
        "{body}"
    );
}

#[tokio::test]
async fn patching_a_quota_changes_only_the_fields_given() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;

    let response = app
        .patch_tenant(
            "acme",
            &json!({ "quota": { "bytes_per_second": 2_000_000 } }),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let tenant: Value = app.get_tenant("acme").await.json().await.unwrap();
    assert_eq!(tenant["quota"]["bytes_per_second"], 2_000_000);
    assert_eq!(tenant["quota"]["requests_per_second"], 100);
}

#[tokio::test]
async fn a_tenant_can_be_disabled_and_enabled_again() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;

    let disabled: Value = app
        .patch_tenant("acme", &json!({ "disabled": true }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(disabled["disabled"], true);
    let enabled: Value = app
        .patch_tenant("acme", &json!({ "disabled": false }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(enabled["disabled"], false);
}

#[tokio::test]
async fn an_unknown_tenant_is_404_on_every_route() {
    let app = TestApp::spawn().await;

    assert_error(
        app.get_tenant("ghost").await,
        StatusCode::NOT_FOUND,
        "tenant_not_found",
    )
    .await;
    assert_error(
        app.patch_tenant("ghost", &json!({ "disabled": true }))
            .await,
        StatusCode::NOT_FOUND,
        "tenant_not_found",
    )
    .await;
    assert_error(
        app.delete_tenant("ghost", false).await,
        StatusCode::NOT_FOUND,
        "tenant_not_found",
    )
    .await;
    assert_error(
        app.post_user("ghost", &json!({ "name": "ghost.app" }))
            .await,
        StatusCode::NOT_FOUND,
        "tenant_not_found",
    )
    .await;
    assert_error(
        app.get_users("ghost").await,
        StatusCode::NOT_FOUND,
        "tenant_not_found",
    )
    .await;
}

#[tokio::test]
async fn deleting_a_tenant_with_users_is_refused_unless_forced() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_user(
        "acme",
        "acme.app",
        json!([{ "prefix": "acme.", "read": true }]),
    )
    .await;

    let refused = app.delete_tenant("acme", false).await;
    let body = assert_error(refused, StatusCode::CONFLICT, "tenant_in_use").await;
    assert!(
        body["message"].as_str().unwrap().contains("1 user"),
        "{body}"
    );
    assert_eq!(app.get_tenant("acme").await.status(), StatusCode::OK);

    let forced = app.delete_tenant("acme", true).await;
    assert_eq!(forced.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get_tenant("acme").await.status(), StatusCode::NOT_FOUND);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let grants: i64 = sqlx::query_scalar("SELECT count(*) FROM grants")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!((users, grants), (0, 0));
}

#[tokio::test]
async fn an_empty_tenant_is_deleted_without_force() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;

    assert_eq!(
        app.delete_tenant("acme", false).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get_tenant("acme").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::spawn().await;

    let response = app
        .http
        .get(format!("{}/v1/nothing-here", app.admin_url))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "route_not_found").await;

    let response = app
        .http
        .put(format!("{}/v1/tenants", app.admin_url))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn readiness_reports_postgres_reachable() {
    let app = TestApp::spawn().await;

    let response = app.get_readyz().await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["checks"]["postgres"], "ok");
}

#[tokio::test]
async fn a_quota_whose_byte_burst_is_below_the_largest_message_is_refused() {
    let app = TestApp::spawn().await;

    let created = app
        .post_tenant(
            &json!({ "name": "acme", "quota": { "bytes_per_second": 1000, "burst_seconds": 2 } }),
        )
        .await;
    let body = assert_error(created, StatusCode::BAD_REQUEST, "invalid_quota").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("largest message"),
        "{body}"
    );

    app.create_tenant("acme").await;
    let patched = app
        .patch_tenant(
            "acme",
            &json!({ "quota": { "burst_seconds": 1, "bytes_per_second": 999_999 } }),
        )
        .await;
    assert_error(patched, StatusCode::BAD_REQUEST, "invalid_quota").await;
}
